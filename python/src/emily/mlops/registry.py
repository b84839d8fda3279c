"""Registry governance for the appraisal model, on MLflow aliases and tags (stages are
deprecated in MLflow 3 and used nowhere here).

* Every trained model becomes a version created *with* its tags in one call (validation status,
  held-out metrics, DVC md5s, git commit, run, trained-by), then gets the alias ``challenger``;
  if the alias cannot be set the version is deleted again, so no version exists without its
  metrics and tags and no alias points at a half-registered version.
* The first model becomes ``champion`` too (there is nothing to compare it with).
* Every alias move is an audit record: a JSON tag ``audit.<UTC timestamp>`` on the version
  that received the alias, and a structured log event ``alias_moved``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from emily.errors import EmilyError
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = get_logger("mlops.registry")

CHAMPION = "champion"
CHALLENGER = "challenger"
# Version tags that make a version "tested": without them it can never be promoted.
REQUIRED_TAGS = ("validation_status", "eval.model.all.r", "run_id")


class RegistryError(EmilyError):
    """The registry refused an operation, or would be left inconsistent by it."""


@dataclass(frozen=True)
class VersionInfo:
    version: int
    run_id: str | None
    source: str
    tags: dict[str, str]
    aliases: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, mv: Any) -> VersionInfo:
        tags = dict(mv.tags or {})
        metrics = {}
        for key, value in tags.items():
            if key.startswith("eval."):
                try:
                    metrics[key.removeprefix("eval.")] = float(value)
                except ValueError:
                    continue
        return cls(
            version=int(mv.version),
            run_id=mv.run_id,
            source=str(mv.source),
            tags=tags,
            aliases=tuple(getattr(mv, "aliases", []) or ()),
            metrics=metrics,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "run_id": self.run_id,
            "aliases": list(self.aliases),
            "metrics": self.metrics,
            "data": {
                k.removeprefix("dvc_md5."): v
                for k, v in self.tags.items()
                if k.startswith("dvc_md5.")
            },
            "validation_status": self.tags.get("validation_status"),
            "trained_by": self.tags.get("trained_by"),
            "git_commit": self.tags.get("git_commit"),
        }


def _missing(exc: Exception) -> bool:
    return "RESOURCE_DOES_NOT_EXIST" in str(exc) or "not found" in str(exc).lower()


def by_alias(client: MlflowClient, name: str, alias: str) -> VersionInfo | None:
    from mlflow.exceptions import MlflowException

    try:
        return VersionInfo.of(client.get_model_version_by_alias(name, alias))
    except MlflowException as exc:
        if _missing(exc):
            return None
        raise RegistryError(f"MLflow refused to look up {name}@{alias}: {exc.message}") from exc


def get_version(client: MlflowClient, name: str, version: int) -> VersionInfo:
    from mlflow.exceptions import MlflowException

    try:
        return VersionInfo.of(client.get_model_version(name, str(version)))
    except MlflowException as exc:
        raise RegistryError(f"{name} has no version {version}", field="version") from exc


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if not _missing(exc):
            raise
        client.create_registered_model(
            name,
            tags={"project": "emily-sovereign", "component": "appraisal"},
            description=(
                "Text → valence in [-1, 1], kernel ridge on MiniLM embeddings, trained on the "
                "VADER lexicon's human ratings. Aliases: champion (serving), challenger."
            ),
        )


def audit(
    client: MlflowClient,
    name: str,
    version: int,
    *,
    action: str,
    alias: str,
    previous: int | None,
    by: str,
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record an alias move on the version that now holds the alias, and in the log."""
    moment = datetime.now(UTC)
    record = {
        "action": action,
        "alias": alias,
        "version": version,
        "previous": previous,
        "by": by,
        "at": moment.isoformat(timespec="microseconds"),
        "evidence": evidence or {},
    }
    key = f"audit.{moment:%Y%m%dT%H%M%S%fZ}.{action}"
    client.set_model_version_tag(name, str(version), key, json.dumps(record, sort_keys=True))
    log.info("alias_moved", model=name, **{k: v for k, v in record.items() if k != "evidence"})
    return record


def register(
    client: MlflowClient,
    name: str,
    *,
    model_uri: str,
    run_id: str,
    tags: dict[str, str],
    trained_by: str,
) -> tuple[VersionInfo, bool]:
    """A new version with every tag, aliased ``challenger`` (and ``champion`` when it is the
    first); returns ``(version, became_champion)``."""
    missing = [t for t in REQUIRED_TAGS if t not in tags]
    if missing:
        raise RegistryError(f"refusing to register without {', '.join(missing)}", field="tags")
    ensure_registered_model(client, name)
    all_tags = {**tags, "trained_by": trained_by}
    previous_challenger = by_alias(client, name, CHALLENGER)
    # MLflow 3 logged models live at models:/<model_id>; the version must name that id.
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    created = client.create_model_version(
        name, model_uri, run_id=run_id, tags=all_tags, model_id=model_id
    )
    version = int(created.version)
    try:
        client.set_registered_model_alias(name, CHALLENGER, str(version))
        audit(
            client,
            name,
            version,
            action="register",
            alias=CHALLENGER,
            previous=previous_challenger.version if previous_challenger else None,
            by=trained_by,
        )
        champion = by_alias(client, name, CHAMPION)
        first = champion is None
        if first:
            client.set_registered_model_alias(name, CHAMPION, str(version))
            audit(
                client,
                name,
                version,
                action="promote",
                alias=CHAMPION,
                previous=None,
                by=trained_by,
                evidence={"reason": "first model: nothing to compare it with"},
            )
    except BaseException:
        # Leave nothing half-registered: the aliases point where they pointed before.
        _undo(client, name, version, previous_challenger)
        raise
    return get_version(client, name, version), first


def realias_challenger(
    client: MlflowClient, name: str, info: VersionInfo, *, by: str
) -> VersionInfo:
    """Point ``challenger`` at an existing version (recorded like a registration)."""
    previous = by_alias(client, name, CHALLENGER)
    client.set_registered_model_alias(name, CHALLENGER, str(info.version))
    audit(
        client,
        name,
        info.version,
        action="register",
        alias=CHALLENGER,
        previous=previous.version if previous else None,
        by=by,
        evidence={"reason": "the pipeline's model again (already registered)"},
    )
    return get_version(client, name, info.version)


def _undo(
    client: MlflowClient, name: str, version: int, previous_challenger: VersionInfo | None
) -> None:
    """Put the aliases back where they were and delete the version (best effort: each step
    is logged when MLflow refuses it, so an operator can finish the cleanup)."""
    from mlflow.exceptions import MlflowException

    for alias, before in ((CHALLENGER, previous_challenger), (CHAMPION, None)):
        try:
            current = by_alias(client, name, alias)
            if current is None or current.version != version:
                continue
            if before is not None:
                client.set_registered_model_alias(name, alias, str(before.version))
            else:
                client.delete_registered_model_alias(name, alias)
        except (MlflowException, RegistryError):
            log.warning("undo_alias_failed", model=name, alias=alias, version=version)
    try:
        client.delete_model_version(name, str(version))
    except MlflowException:
        log.warning("undo_version_failed", model=name, version=version)
