"""Applying the repository (``feast apply`` semantics), idempotently, on every ``emily up``.

1. Role, schema and grants (cheap; always, so they follow the settings).
2. If the definitions' fingerprint equals the one recorded at the last apply, stop: nothing
   changed, and importing Feast alone would cost seconds.
3. Otherwise recreate the source views, then apply the Feast objects: new and changed objects are
   written, objects no longer defined are deleted, and a view whose *schema* changed under the
   same name is refused (``FeatureDefinitionError``): a schema change is a new versioned view.
4. Record the fingerprint.

The fingerprint covers the source of the definition modules and the settings that shape the
objects, so editing a view, a TTL or a SQL window is applied on the next ``up``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emily.errors import EmilyError
from emily.features import database

if TYPE_CHECKING:
    from feast import FeatureStore

    from emily.config import Settings

_DEFINITION_MODULES = ("schema.py", "repo.py", "database.py")


class FeatureDefinitionError(EmilyError):
    """A definition would silently change a published feature view."""


@dataclass
class ApplyResult:
    applied: bool
    fingerprint: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.applied:
            return "feature repository up to date (nothing changed)"
        parts = [
            f"{label}: {', '.join(names)}"
            for label, names in (
                ("new", self.created),
                ("updated", self.updated),
                ("deleted", self.deleted),
            )
            if names
        ]
        return "feature repository applied (" + ("; ".join(parts) or "no object changed") + ")"


def fingerprint(settings: Settings) -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in _DEFINITION_MODULES:
        digest.update(name.encode())
        digest.update((here / name).read_bytes())
    config = settings.features
    shaping = {
        "project": config.project,
        "db_schema": config.db_schema,
        "redis_type": config.redis_type,
        "redis_db": config.redis_db,
        "key_ttl_s": config.key_ttl_s,
    }
    digest.update(json.dumps(shaping, sort_keys=True).encode())
    return digest.hexdigest()


def ensure_applied(settings: Settings, *, force: bool = False) -> ApplyResult:
    """Bring PostgreSQL and the registry to the definitions (see the module docstring)."""
    database.ensure_privileges(settings)
    current = fingerprint(settings)
    if not force and database.stored_fingerprint(settings) == current:
        return ApplyResult(applied=False, fingerprint=current)
    database.ensure_views(settings)
    from emily.features.store import open_store

    result = apply_objects(open_store(settings), settings)
    result.fingerprint = current
    database.record_fingerprint(settings, current)
    return result


def _schema_of(view: Any) -> tuple[Any, ...]:
    return (
        tuple(sorted((f.name, str(f.dtype)) for f in view.features)),
        tuple(sorted(view.entities)),
    )


# Bookkeeping, what apply infers (entity columns) and the pickled transform (dill output is not
# deterministic; its source, body_text, is compared): not part of what a definition says.
_BOOKKEEPING = {
    "body",
    "meta",
    "created_timestamp",
    "last_updated_timestamp",
    "materialization_intervals",
    "entity_columns",
}


def _strip(message: Any) -> None:
    """Clear the registry's bookkeeping (timestamps, materialization intervals) everywhere
    in a protobuf message, nested copies of other objects included."""
    for descriptor, value in message.ListFields():
        if descriptor.name in _BOOKKEEPING:
            message.ClearField(descriptor.name)
        elif descriptor.message_type is not None:
            if hasattr(value, "ListFields"):
                items = [value]
            elif hasattr(value, "values"):  # a map: its values are the messages
                items = list(value.values())
            else:
                items = list(value)
            for item in items:
                if hasattr(item, "ListFields"):
                    _strip(item)


def _spec(obj: Any) -> bytes:
    """What an object says, without the registry's bookkeeping."""
    proto = obj.to_proto()
    _strip(proto)
    return bytes(proto.SerializeToString(deterministic=True))


def _existing(store: FeatureStore) -> dict[str, Any]:
    objects: dict[str, Any] = {}
    listings = (
        store.list_entities,
        store.list_data_sources,
        store.list_feature_views,
        store.list_on_demand_feature_views,
        store.list_feature_services,
        store.list_permissions,
    )
    for listing in listings:
        for obj in listing():  # type: ignore[operator]
            objects[f"{type(obj).__name__}:{obj.name}"] = obj
    return objects


def apply_objects(
    store: FeatureStore, settings: Settings, objects: list[Any] | None = None
) -> ApplyResult:
    """Apply ``objects`` (default: the repository) with ``feast apply`` semantics."""
    from feast import FeatureView, OnDemandFeatureView

    from emily.features.repo import build

    wanted = objects if objects is not None else build(settings.features.db_schema)
    existing = _existing(store)
    result = ApplyResult(applied=True, fingerprint="")
    for obj in wanted:
        key = f"{type(obj).__name__}:{obj.name}"
        before = existing.get(key)
        if before is None:
            result.created.append(obj.name)
            continue
        if isinstance(obj, FeatureView | OnDemandFeatureView) and _schema_of(before) != (
            _schema_of(obj)
        ):
            raise FeatureDefinitionError(
                f"feature view {obj.name} would change its schema in place "
                f"({_schema_of(before)[0]} → {_schema_of(obj)[0]})",
                field=obj.name,
                hint="publish the change as a new versioned view (e.g. _v2) and retire the old",
            )
        if _spec(before) != _spec(obj):
            result.updated.append(obj.name)
    names = {f"{type(obj).__name__}:{obj.name}" for obj in wanted}
    stale = [obj for key, obj in existing.items() if key not in names]
    result.deleted = [obj.name for obj in stale]
    store.apply(wanted, objects_to_delete=stale, partial=False)
    # With cache_mode thread the store keeps serving the cached registry until its next tick.
    store.refresh_registry()  # type: ignore[no-untyped-call]
    return result
