"""What the feature repository holds, as plain data: entities, views, their fields and TTLs, push
sources and feature services.

This module imports no Feast (``import feast`` costs seconds): the agent's feature client, the
push validator and the monitor read these definitions, and ``emily.features.repo`` builds the
Feast objects from them, so there is one definition of every name, type and TTL.

Names carry a version (``thread_mood_v1``): a schema change is a new view ``..._v2`` next to the
old one, never an edit of a published view (``emily.features.apply`` refuses that).

TTLs are the staleness each view accepts — in a point-in-time join a value older than the TTL is
dropped, and the agent's client treats an online value older than it as missing (Feast itself
serves online values of any age):

* ``thread_mood_v1`` 2 h: the rolling mood of a thread. The loop's own mood decays within tens of
  minutes (opponent process), so a two-hour-old average says little about the thread now.
* ``thread_decision_v1`` 1 day: how confident and how deliberate the thread's decisions were; it
  follows the models and settings, which change over days, not minutes.
* ``stimulus_last_v1`` 1 day: when a kind of stimulus was last seen and how it felt; "time since
  the last similar stimulus" stays meaningful across a night's pause, not across weeks.
* ``stimulus_habituation_v1`` 1 h: exposures in the last hour; older than its own window the value
  describes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

DType = Literal["float64", "int64", "string", "bool"]

OWNER = "emily-features@emily.local"
WINDOW = 20
"""Turns in the rolling thread windows (the ``_20`` in the feature names)."""
HABITUATION_SCALE = 10.0
"""``habituation = 1 - exp(-exposures_1h / HABITUATION_SCALE)``."""

# What an entity key may look like: a thread id is the agents API's thread-id pattern; a
# stimulus source is a short label without control characters (Stimulus.source: 64 chars).
# Anything else is refused before it reaches either store.
THREAD_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
LABEL_KEY = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")


@dataclass(frozen=True)
class EntityDef:
    name: str
    join_key: str
    description: str
    tags: dict[str, str] = field(default_factory=dict)
    pattern: re.Pattern[str] = THREAD_KEY
    pattern_text: str = "1-128 of A-Z a-z 0-9 _ . : -"


@dataclass(frozen=True)
class FieldDef:
    name: str
    dtype: DType
    description: str
    nullable: bool = False
    """May be null in a source row (and so in a push)."""


@dataclass(frozen=True)
class ViewDef:
    name: str
    entity: EntityDef
    ttl: timedelta
    fields: tuple[FieldDef, ...]
    description: str
    source_view: str
    """The SQL view (in the features schema) the view's rows come from."""
    push_source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def refs(self) -> list[str]:
        return [f"{self.name}:{f.name}" for f in self.fields]


@dataclass(frozen=True)
class PushSourceDef:
    """A push source: the columns one push row carries (the union of its views' fields)."""

    name: str
    entity: EntityDef
    batch_view: str
    description: str
    timestamp: str = "occurred_at"
    created: str = "created_at"

    def views(self) -> list[ViewDef]:
        return [v for v in VIEWS if v.push_source == self.name]

    def fields(self) -> dict[str, FieldDef]:
        """Feature column → definition: the union of the fields of the views it feeds."""
        return {item.name: item for view in self.views() for item in view.fields}


@dataclass(frozen=True)
class RequestFieldDef:
    name: str
    dtype: DType
    description: str


@dataclass(frozen=True)
class OnDemandDef:
    name: str
    inputs: tuple[str, ...]
    """Views whose features the transform reads."""
    request: tuple[RequestFieldDef, ...]
    fields: tuple[FieldDef, ...]
    description: str
    tags: dict[str, str] = field(default_factory=dict)

    def refs(self) -> list[str]:
        return [f"{self.name}:{f.name}" for f in self.fields]


@dataclass(frozen=True)
class ServiceDef:
    name: str
    views: tuple[str, ...]
    description: str
    tags: dict[str, str] = field(default_factory=dict)


THREAD = EntityDef(
    name="thread",
    join_key="thread_id",
    description="A conversation thread of the agent (episode context.thread_id).",
    tags={"owner": OWNER, "domain": "agents"},
)
STIMULUS_KIND = EntityDef(
    name="stimulus_kind",
    join_key="stimulus_kind",
    description="Where a stimulus came from (episode context.source: user, sensor, demo ...).",
    tags={"owner": OWNER, "domain": "perception"},
    pattern=LABEL_KEY,
    pattern_text="1-64 characters, no control characters",
)
ENTITIES = (THREAD, STIMULUS_KIND)


def _f(name: str, dtype: DType, description: str, *, nullable: bool = False) -> FieldDef:
    return FieldDef(name, dtype, description, nullable)


def _w(what: str) -> str:
    return f"{what} over the thread's last {WINDOW} stored episodes (this one included)"


THREAD_MOOD = ViewDef(
    name="thread_mood_v1",
    entity=THREAD,
    ttl=timedelta(hours=2),
    fields=(
        _f("valence_mean_20", "float64", _w("Mean valence")),
        _f("arousal_mean_20", "float64", _w("Mean arousal")),
        _f("dominance_mean_20", "float64", _w("Mean dominance")),
        _f("valence_var_20", "float64", _w("Population variance of valence")),
        _f("arousal_var_20", "float64", _w("Population variance of arousal")),
        _f("dominance_var_20", "float64", _w("Population variance of dominance")),
        _f("degraded_rate_20", "float64", _w("Share of degraded turns")),
        _f("episodes_20", "int64", _w("Episodes counted (fewer than 20 early in a thread)")),
        _f("turn", "int64", "Turn number of the newest episode (context.turn; -1 if absent)."),
    ),
    description="Rolling mood of a thread: V/A/D mean and variance, degraded-turn rate.",
    source_view="thread_turns_v1",
    push_source="thread_turn_push_v1",
    tags={"owner": OWNER, "layer": "affect", "pushed_by": "agents.consolidate"},
)
THREAD_DECISION = ViewDef(
    name="thread_decision_v1",
    entity=THREAD,
    ttl=timedelta(days=1),
    fields=(
        _f(
            "appraisal_confidence",
            "float64",
            "Posterior probability of the chosen policy in the newest turn (the workspace's "
            "confidence in its appraisal; null if not recorded).",
            nullable=True,
        ),
        _f(
            "appraisal_confidence_mean_20",
            "float64",
            _w("Mean appraisal confidence (null: none recorded)"),
            nullable=True,
        ),
        _f("cognition_rate_20", "float64", _w("Share of turns decided by the cognition layer")),
    ),
    description="How confident and how deliberate a thread's decisions are.",
    source_view="thread_turns_v1",
    push_source="thread_turn_push_v1",
    tags={"owner": OWNER, "layer": "workspace", "pushed_by": "agents.consolidate"},
)
STIMULUS_LAST = ViewDef(
    name="stimulus_last_v1",
    entity=STIMULUS_KIND,
    ttl=timedelta(days=1),
    fields=(
        _f("last_seen_epoch", "float64", "When this kind was last perceived (Unix seconds)."),
        _f("last_valence", "float64", "Valence of that episode."),
        _f("last_arousal", "float64", "Arousal of that episode."),
        _f("last_dominance", "float64", "Dominance of that episode."),
    ),
    description="The newest episode of each stimulus kind.",
    source_view="stimulus_episodes_v1",
    push_source="stimulus_push_v1",
    tags={"owner": OWNER, "layer": "perception", "pushed_by": "agents.consolidate"},
)
STIMULUS_HABITUATION = ViewDef(
    name="stimulus_habituation_v1",
    entity=STIMULUS_KIND,
    ttl=timedelta(hours=1),
    fields=(
        _f("exposures_1h", "int64", "Episodes of this kind in the hour up to this one."),
        _f("arousal_mean_1h", "float64", "Mean arousal of those episodes."),
        _f(
            "habituation",
            "float64",
            f"1 - exp(-exposures_1h / {HABITUATION_SCALE:g}): how used to this kind the agent is.",
        ),
    ),
    description="Habituation to each stimulus kind (batch: refreshed by materialization).",
    source_view="stimulus_habituation_v1",
    tags={"owner": OWNER, "layer": "perception", "refresh": "materialize"},
)
VIEWS = (THREAD_MOOD, THREAD_DECISION, STIMULUS_LAST, STIMULUS_HABITUATION)

THREAD_PUSH = PushSourceDef(
    name="thread_turn_push_v1",
    entity=THREAD,
    batch_view="thread_turns_v1",
    description="One row per stored episode of a thread, pushed by consolidate after the commit.",
)
STIMULUS_PUSH = PushSourceDef(
    name="stimulus_push_v1",
    entity=STIMULUS_KIND,
    batch_view="stimulus_episodes_v1",
    description="One row per stored episode, keyed by its stimulus kind.",
)
PUSH_SOURCES = (THREAD_PUSH, STIMULUS_PUSH)

STIMULUS_APPRAISAL = OnDemandDef(
    name="stimulus_appraisal_v1",
    inputs=(THREAD_MOOD.name, STIMULUS_LAST.name),
    request=(
        RequestFieldDef("stimulus_valence", "float64", "The stimulus's appraised valence."),
        RequestFieldDef("stimulus_arousal", "float64", "Its appraised arousal."),
        RequestFieldDef("stimulus_dominance", "float64", "Its appraised dominance."),
        RequestFieldDef("request_epoch", "float64", "When it was perceived (Unix seconds)."),
    ),
    fields=(
        _f(
            "mood_congruence",
            "float64",
            "Mean of the products of the stimulus's V/A/D and the thread's mean V/A/D, in "
            "[-1, 1]: positive when the stimulus feels like the current mood.",
        ),
        _f("affect_intensity", "float64", "|V/A/D| of the stimulus / sqrt(3), in [0, 1]."),
        _f(
            "seconds_since_last_similar",
            "float64",
            "Seconds since a stimulus of the same kind was last perceived (null: never).",
        ),
    ),
    description="Request-time appraisal of a stimulus against the stored mood and history.",
    tags={"owner": OWNER, "layer": "perception", "mode": "python"},
)

AGENT_SERVICE = ServiceDef(
    name="agent_perception_v1",
    views=tuple(v.name for v in VIEWS),
    description="Everything perceive reads for a turn, without request-time transforms.",
    tags={"owner": OWNER, "consumer": "agents.perceive"},
)
AGENT_ODFV_SERVICE = ServiceDef(
    name="agent_perception_odfv_v1",
    views=(*(v.name for v in VIEWS), STIMULUS_APPRAISAL.name),
    description="What perceive reads, plus the request-time appraisal of the stimulus.",
    tags={"owner": OWNER, "consumer": "agents.perceive"},
)
SERVICES = (AGENT_SERVICE, AGENT_ODFV_SERVICE)

MAX_TTL = max(v.ttl for v in VIEWS)


def view(name: str) -> ViewDef:
    for item in VIEWS:
        if item.name == name:
            return item
    raise KeyError(name)


def push_source(name: str) -> PushSourceDef:
    for item in PUSH_SOURCES:
        if item.name == name:
            return item
    raise KeyError(name)


def view_of() -> dict[str, str]:
    """Feature name → the view (or on-demand view) that defines it; names are unique."""
    owners = {f.name: v.name for v in VIEWS for f in v.fields}
    owners.update({f.name: STIMULUS_APPRAISAL.name for f in STIMULUS_APPRAISAL.fields})
    return owners


def perception_refs() -> list[str]:
    """The feature references perceive asks for (explicit refs: the server resolves a feature
    service from its protobuf on every request, which costs more than the read itself)."""
    refs: list[str] = []
    for item in VIEWS:
        refs.extend(item.refs())
    refs.extend(STIMULUS_APPRAISAL.refs())
    return refs
