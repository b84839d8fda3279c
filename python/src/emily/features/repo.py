"""The Feast repository in code: entities, sources, feature views, the on-demand view, feature
services and permissions, built from the plain definitions of ``emily.features.schema``.

Imports Feast (seconds): only the CLI's feature commands, ``emily up`` (when the definitions
changed) and the benchmark import this module; the agent talks to the feature server over HTTP.

Permissions (enforced by ``feast serve`` when it runs with OIDC auth; the in-process SDK never
enforces anything, so PostgreSQL and Redis credentials are the boundary there):

* ``feature_readers`` — roles ``reader``, ``writer``, ``admin``: read online/offline, describe;
* ``turn_writers`` — roles ``writer``, ``admin``: write online to the pushed views only;
* ``feature_admins`` — role ``admin``: everything (materialization through the server included).
"""

from __future__ import annotations

from typing import Any

from feast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
    PushSource,
    RequestSource,
    ValueType,
)
from feast.data_source import DataSource
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)

# `from feast import on_demand_feature_view` is the module, not the decorator.
from feast.on_demand_feature_view import on_demand_feature_view
from feast.permissions.action import ALL_ACTIONS, AuthzedAction
from feast.permissions.permission import Permission
from feast.permissions.policy import RoleBasedPolicy
from feast.types import Bool, Float64, Int64, PrimitiveFeastType, String

from emily.features import schema
from emily.features.schema import OWNER

READER, WRITER, ADMIN = "reader", "writer", "admin"
ROLES = (READER, WRITER, ADMIN)

_DTYPES: dict[str, PrimitiveFeastType] = {
    "float64": Float64,
    "int64": Int64,
    "string": String,
    "bool": Bool,
}


def _fields(defs: tuple[schema.FieldDef, ...] | tuple[schema.RequestFieldDef, ...]) -> list[Field]:
    return [
        Field(name=d.name, dtype=_DTYPES[d.dtype], description=d.description, tags={}) for d in defs
    ]


def entities() -> dict[str, Entity]:
    return {
        e.name: Entity(
            name=e.name,
            join_keys=[e.join_key],
            value_type=ValueType.STRING,
            description=e.description,
            owner=OWNER,
            tags=dict(e.tags),
        )
        for e in schema.ENTITIES
    }


def source_for(settings_schema: str, view_name: str, description: str) -> PostgreSQLSource:
    return PostgreSQLSource(
        name=f"{view_name}_source",
        table=f"{settings_schema}.{view_name}",
        timestamp_field="occurred_at",
        created_timestamp_column="created_at",
        description=description,
        owner=OWNER,
        tags={"owner": OWNER, "offline": "episodic_memories"},
    )


def build(db_schema: str) -> list[Any]:
    """Every object of the repository, in apply order."""
    ents = entities()
    batch: dict[str, PostgreSQLSource] = {}
    for view in schema.VIEWS:
        if view.source_view not in batch:
            batch[view.source_view] = source_for(
                db_schema, view.source_view, f"Rows of the view {db_schema}.{view.source_view}."
            )
    pushes: dict[str, PushSource] = {
        p.name: PushSource(
            name=p.name,
            batch_source=batch[p.batch_view],
            description=p.description,
            owner=OWNER,
            tags={"owner": OWNER},
        )
        for p in schema.PUSH_SOURCES
    }
    views: dict[str, FeatureView] = {}
    for view in schema.VIEWS:
        source: DataSource = (
            pushes[view.push_source] if view.push_source else batch[view.source_view]
        )
        views[view.name] = FeatureView(
            name=view.name,
            entities=[ents[view.entity.name]],
            ttl=view.ttl,
            schema=_fields(view.fields),
            source=source,
            online=True,
            description=view.description,
            owner=OWNER,
            tags={**view.tags, "ttl_s": str(int(view.ttl.total_seconds()))},
        )
    request = RequestSource(
        name="stimulus_request_v1",
        schema=_fields(schema.STIMULUS_APPRAISAL.request),
        description="What perceive knows about the stimulus at request time.",
        owner=OWNER,
        tags={"owner": OWNER},
    )
    odfv = stimulus_appraisal(views, request)
    services = [
        FeatureService(
            name=s.name,
            features=[odfv if name == odfv.name else views[name] for name in s.views],
            description=s.description,
            owner=OWNER,
            tags=dict(s.tags),
        )
        for s in schema.SERVICES
    ]
    return [
        *ents.values(),
        *batch.values(),
        *pushes.values(),
        request,
        *views.values(),
        odfv,
        *services,
        *permissions(),
    ]


def stimulus_appraisal(
    views: dict[str, FeatureView], request: RequestSource
) -> OnDemandFeatureView:
    spec = schema.STIMULUS_APPRAISAL

    # Feast 0.67 compares the declared output fields with the ones it infers by running the
    # transform, descriptions included, and the inferred ones have none: the outputs' meanings
    # travel in the view's tags instead ("field:<name>").
    field_docs = {f"field:{f.name}": f.description for f in spec.fields}

    inputs: list[Any] = [*(views[name] for name in spec.inputs), request]

    @on_demand_feature_view(  # type: ignore[untyped-decorator]
        sources=inputs,
        schema=[Field(name=f.name, dtype=_DTYPES[f.dtype]) for f in spec.fields],
        mode="python",
        description=spec.description,
        owner=OWNER,
        tags={**spec.tags, **field_docs},
    )
    def stimulus_appraisal_v1(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
        # Serialized (dill) into the registry and run by the feature server: no closures over
        # module state, imports inside.
        import math

        congruence: list[float | None] = []
        intensity: list[float | None] = []
        since: list[float | None] = []
        for sv, sa, sd, mv, ma, md, now, last in zip(
            inputs["stimulus_valence"],
            inputs["stimulus_arousal"],
            inputs["stimulus_dominance"],
            inputs["valence_mean_20"],
            inputs["arousal_mean_20"],
            inputs["dominance_mean_20"],
            inputs["request_epoch"],
            inputs["last_seen_epoch"],
            strict=True,
        ):
            stimulus = (sv, sa, sd)
            mood = (mv, ma, md)
            known = all(x is not None for x in stimulus)
            if known and all(x is not None for x in mood):
                congruence.append(sum(a * b for a, b in zip(stimulus, mood, strict=True)) / 3.0)
            else:
                congruence.append(None)
            intensity.append(
                math.sqrt(sum(x * x for x in stimulus)) / math.sqrt(3.0) if known else None
            )
            since.append(None if last is None or now is None else max(0.0, now - last))
        return {
            "mood_congruence": congruence,
            "affect_intensity": intensity,
            "seconds_since_last_similar": since,
        }

    result: OnDemandFeatureView = stimulus_appraisal_v1
    return result


def permissions() -> list[Permission]:
    pushed = [v.name for v in schema.VIEWS if v.push_source]
    # Feast's annotation says instances; the permission types are the classes themselves.
    every: Any = [FeatureView, OnDemandFeatureView, FeatureService]
    views: Any = [FeatureView]
    return [
        Permission(
            name="feature_readers",
            types=every,
            policy=RoleBasedPolicy(roles=list(ROLES)),
            actions=[AuthzedAction.READ_ONLINE, AuthzedAction.READ_OFFLINE, AuthzedAction.DESCRIBE],
            tags={"owner": OWNER},
        ),
        Permission(
            name="turn_writers",
            types=views,
            name_patterns=[f"^{name}$" for name in pushed],
            policy=RoleBasedPolicy(roles=[WRITER, ADMIN]),
            actions=[AuthzedAction.WRITE_ONLINE],
            tags={"owner": OWNER},
        ),
        Permission(
            name="feature_admins",
            types=every,
            policy=RoleBasedPolicy(roles=[ADMIN]),
            actions=list(ALL_ACTIONS),
            tags={"owner": OWNER},
        ),
    ]
