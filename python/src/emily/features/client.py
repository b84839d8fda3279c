"""The agent's feature client: reads a turn's online features and pushes a stored episode's rows
through the feature server (``feast serve``) over HTTP, never importing Feast.

* Every call has a deadline; a failure is an exception for the caller to note (the turn goes on,
  degraded), and after a failure the server is left alone for ``cooldown_s``, so a dead server
  costs one timeout, not one per turn.
* Reads ask for explicit feature references (a feature service is rebuilt from its protobuf on
  every request, which costs more than the Redis read) with full names, so each value is
  attributed to its view, and are checked against the views' TTLs *at the turn's time*: Feast
  serves online values of any age, and a value stamped after the turn (a replayed, older
  stimulus) must not be used either. Both count as missing, as in a point-in-time join.
* Pushes are validated first (``emily.features.validation``): a bad row is refused whole and
  nothing is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx2
from pydantic import BaseModel, Field

from emily.errors import EmilyError, StackNotRunningError
from emily.features import schema
from emily.features.validation import to_columns, validate_push
from emily.locator import FEATURES, feature_server_url
from emily.statefile import StateDir

if TYPE_CHECKING:
    from emily.config import Settings
    from emily.features.tokens import TokenSource

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Feast reports a value it does not have with this timestamp.
_NEVER = "1970-01-01T00:00:00Z"


class FeatureServerError(EmilyError):
    """The feature server refused or failed a request (status and Feast's message)."""

    def __init__(self, message: str, *, status: int | None = None, **kwargs: Any) -> None:
        self.status = status
        super().__init__(message, **kwargs)


class FeatureCooldownError(FeatureServerError):
    """A recent failure: the server is not tried again until the cool-down ends."""


class OnlineFeatures(BaseModel):
    """One turn's online features: values by ``view:feature`` (``None``: missing)."""

    values: dict[str, float | int | None] = Field(default_factory=dict)
    missing: list[str] = Field(default_factory=list, description="Views without a value.")
    stale: list[str] = Field(
        default_factory=list, description="Views whose value is older than their TTL."
    )
    future: list[str] = Field(
        default_factory=list, description="Views whose value is newer than the turn."
    )
    age_s: dict[str, float] = Field(
        default_factory=dict, description="Age of each view's value at the turn's time."
    )


def in_loop(settings: Settings) -> bool:
    """Should agent turns use the feature store (``features.in_loop``)?"""
    mode = settings.features.in_loop
    if mode != "auto":
        return mode == "on"
    if settings.features.server_url is not None:
        return True
    # Auto: the local stack started a feature server here once (running or not: a server that
    # was started and is down now is a degraded turn, one never deployed is not).
    try:
        return FEATURES in StateDir(settings.state_dir).read().services
    except EmilyError:
        return False


def _parse_ts(text: str) -> datetime | None:
    if not text or text == _NEVER:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class FeatureClient:
    """HTTP client of one feature server. Use ``async with`` or :meth:`aclose`."""

    def __init__(
        self,
        base_url: str,
        settings: Settings,
        tokens: TokenSource | None,
        *,
        client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.tokens = tokens
        self._client = client or httpx2.AsyncClient(
            timeout=httpx2.Timeout(5.0, connect=1.0),
            limits=httpx2.Limits(max_keepalive_connections=4, max_connections=8),
        )
        self._down_until = 0.0
        self._timeouts = 0
        self.last_error: str | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, roles: Sequence[str] = ("writer",)
    ) -> FeatureClient:
        """A client of the configured (or local) server; raises ``StackNotRunningError`` when
        there is none."""
        from emily.features.tokens import TokenSource

        url = feature_server_url(settings)
        return cls(url, settings, TokenSource(settings, list(roles), subject="emily-agent"))

    async def __aenter__(self) -> FeatureClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- plumbing ------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        token = self.tokens() if self.tokens is not None else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def _post(self, path: str, body: dict[str, Any], deadline_s: float) -> httpx2.Response:
        if time.monotonic() < self._down_until:
            raise FeatureCooldownError(
                f"unavailable (cooling down after: {self.last_error or 'an error'})"
            )
        if deadline_s <= 0:
            raise TimeoutError("no time left for the feature server")
        try:
            response = await asyncio.wait_for(
                self._client.post(
                    f"{self.base_url}{path}",
                    json=body,
                    headers=self._headers(),
                    timeout=deadline_s,
                ),
                deadline_s,
            )
        except (TimeoutError, httpx2.TimeoutException) as exc:
            # One slow answer is not an outage; two in a row are treated as one.
            self._timeouts += 1
            if self._timeouts >= 2:
                self._failed("TimeoutError")
            raise TimeoutError(f"no answer within {deadline_s:.2f} s") from exc
        except (httpx2.HTTPError, OSError, StackNotRunningError) as exc:
            self._failed(type(exc).__name__)
            raise FeatureServerError(f"{path} failed ({type(exc).__name__})") from exc
        self._timeouts = 0
        if response.status_code == 401 and self.tokens is not None:
            self.tokens.reset()  # an expired or rotated key: mint afresh next time
        if response.status_code != 200:
            detail = response.text.strip()[:300]
            if response.status_code >= 500:
                self._failed(f"HTTP {response.status_code}")
            raise FeatureServerError(
                f"{path} answered {response.status_code}: {detail or '(empty body)'}",
                status=response.status_code,
            )
        self.last_error = None
        return response

    def _failed(self, reason: str) -> None:
        self.last_error = reason
        self._down_until = time.monotonic() + self.settings.features.cooldown_s

    async def warm_up(self, timeout_s: float = 2.0) -> bool:
        """Mint the first token and open a connection before the first turn needs them (the
        first token imports the JWT code and signs; a cold connection costs a handshake)."""
        try:
            self._headers()
        except EmilyError:
            return False
        return await self.health(timeout_s)

    async def health(self, timeout_s: float = 1.0) -> bool:
        try:
            response = await self._client.get(f"{self.base_url}/health", timeout=timeout_s)
        except (httpx2.HTTPError, OSError):
            return False
        return response.status_code == 200

    # -- reads ---------------------------------------------------------------------------------
    async def read(
        self,
        thread_id: str,
        stimulus_kind: str,
        *,
        at: datetime,
        stimulus_vad: Sequence[float],
        deadline_s: float | None = None,
    ) -> OnlineFeatures:
        """The thread's and the stimulus kind's online features, and the request-time appraisal
        of this stimulus, as valid at ``at`` (the turn's time)."""
        refs = schema.perception_refs()
        body = {
            "features": refs,
            # Full names would attribute each value to its view, but Feast 0.67 then drops the
            # on-demand outputs; feature names are unique across our views, so the short name
            # says the view as well (``schema.view_of``).
            "full_feature_names": False,
            "entities": {
                schema.THREAD.join_key: [thread_id],
                schema.STIMULUS_KIND.join_key: [stimulus_kind],
                "stimulus_valence": [float(stimulus_vad[0])],
                "stimulus_arousal": [float(stimulus_vad[1])],
                "stimulus_dominance": [float(stimulus_vad[2])],
                "request_epoch": [at.timestamp()],
            },
        }
        deadline = self.settings.features.read_deadline_s if deadline_s is None else deadline_s
        response = await self._post("/get-online-features", body, deadline)
        return parse_online(response.json(), at)

    # -- pushes --------------------------------------------------------------------------------
    async def push(
        self,
        push_source: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        deadline_s: float | None = None,
    ) -> int:
        """Validate, then push ``rows`` to the online store; returns the rows pushed."""
        config = self.settings.features
        checked = validate_push(
            push_source, rows, max_rows=config.push_max_rows, max_future_s=config.push_max_future_s
        )
        body = {
            "push_source_name": push_source,
            "df": to_columns(push_source, checked),
            "to": "online",
        }
        deadline = config.push_deadline_s if deadline_s is None else deadline_s
        await self._post("/push", body, deadline)
        return len(checked)

    async def push_many(
        self, batches: Mapping[str, Sequence[Mapping[str, Any]]], *, deadline_s: float | None
    ) -> int:
        """Several push sources at once (all validated before any is sent)."""
        config = self.settings.features
        for source, rows in batches.items():
            validate_push(
                source, rows, max_rows=config.push_max_rows, max_future_s=config.push_max_future_s
            )
        counts = await asyncio.gather(
            *(self.push(source, rows, deadline_s=deadline_s) for source, rows in batches.items())
        )
        return sum(counts)


def parse_online(payload: Mapping[str, Any], at: datetime) -> OnlineFeatures:
    """Feast's ``/get-online-features`` answer (one entity row) as values by
    ``view:feature``, each view's value dropped when it is older than its TTL or newer than
    ``at``. On-demand outputs are computed from what the server had; each is dropped with the
    view it reads (``ODFV_INPUTS``)."""
    names: list[str] = list(payload["metadata"]["feature_names"])
    results: list[Mapping[str, Any]] = list(payload["results"])
    result = OnlineFeatures()
    stamps: dict[str, datetime | None] = {}
    raw: dict[str, Any] = {}
    owners = schema.view_of()
    for name, column in zip(names, results, strict=True):
        view = owners.get(name)
        if view is None:
            continue  # entity keys and request data come back too
        feature = name
        raw[f"{view}:{feature}"] = column["values"][0]
        if view != schema.STIMULUS_APPRAISAL.name:
            stamp = _parse_ts(column["event_timestamps"][0])
            if stamp is not None or view not in stamps:
                stamps[view] = stamp
    dropped: set[str] = set()
    for item in schema.VIEWS:
        stamp = stamps.get(item.name)
        if stamp is None:
            result.missing.append(item.name)
            dropped.add(item.name)
            continue
        age = (at - stamp).total_seconds()
        result.age_s[item.name] = round(age, 3)
        if stamp > at + timedelta(seconds=1):
            result.future.append(item.name)
            dropped.add(item.name)
        elif age > item.ttl.total_seconds():
            result.stale.append(item.name)
            dropped.add(item.name)
    odfv = schema.STIMULUS_APPRAISAL.name
    for ref, value in raw.items():
        view, feature = ref.split(":", 1)
        source = ODFV_INPUTS.get(feature) if view == odfv else view
        result.values[ref] = None if source in dropped else _number(value)
    return result


# Which stored view each on-demand output is computed from (affect_intensity: request data only).
ODFV_INPUTS = {
    "mood_congruence": schema.THREAD_MOOD.name,
    "seconds_since_last_similar": schema.STIMULUS_LAST.name,
}


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    return None
