"""Direct, read-only access to the online store's Redis layout, without importing Feast: the
monitor and the benchmark's Redis floor use it.

Feast's Redis layout (entity key serialization version 3): one hash per entity, named
``serialize_entity_key(join key = value) + project``; every view of that entity has a field
``_ts:<view>`` holding the event timestamp (a protobuf ``Timestamp``) of the row it last wrote, and
one field per feature. A test checks :func:`entity_key` against Feast's own function.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import redis as redis_lib

from emily.stack.features import redis_connection

if TYPE_CHECKING:
    from emily.config import Settings

_STRING = 2  # feast.value_type.ValueType.STRING


def entity_key(project: str, join_key: str, value: str) -> bytes:
    """The Redis key of one single-key string entity."""
    key, val = join_key.encode("utf-8"), value.encode("utf-8")
    return b"".join(
        [
            struct.pack("<I", 1),
            struct.pack("<I", _STRING),
            struct.pack("<I", len(key)),
            key,
            struct.pack("<I", _STRING),
            struct.pack("<I", len(val)),
            val,
            project.encode("utf-8"),
        ]
    )


def key_prefix(join_key: str) -> bytes:
    """What every key of one entity type starts with (Feast scans ``prefix*project``)."""
    key = join_key.encode("utf-8")
    return struct.pack("<I", 1) + struct.pack("<I", _STRING) + struct.pack("<I", len(key)) + key


def parse_timestamp(raw: bytes | None) -> datetime | None:
    """A serialized ``google.protobuf.Timestamp`` (field 1: seconds, field 2: nanos, both
    varints), decoded by hand: two varints do not need the protobuf runtime."""
    if not raw:
        return None
    fields = {1: 0, 2: 0}
    index = 0
    while index < len(raw):
        tag = raw[index]
        index += 1
        value, shift = 0, 0
        while True:
            byte = raw[index]
            index += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        fields[tag >> 3] = value
    seconds = fields[1] - (1 << 64) if fields[1] >= 1 << 63 else fields[1]
    return datetime.fromtimestamp(seconds + fields[2] / 1e9, UTC)


def _kwargs(connection: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """Feast's parsing of its connection string: nodes, then ``key=value`` (JSON-decoded)."""
    nodes: list[tuple[str, int]] = []
    kwargs: dict[str, Any] = {}
    for item in connection.split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            try:
                kwargs[key] = json.loads(value)
            except ValueError:
                kwargs[key] = value
        elif item:
            host, _, port = item.rpartition(":")
            nodes.append((host or item, int(port or 6379)))
    return nodes, kwargs


def client(settings: Settings, *, timeout_s: float = 2.0) -> Any:
    """A redis-py client on the online store, built as Feast builds its own."""
    nodes, kwargs = _kwargs(redis_connection(settings))
    kwargs.setdefault("socket_timeout", timeout_s)
    kwargs.setdefault("socket_connect_timeout", timeout_s)
    kind = settings.features.redis_type
    if kind == "redis_cluster":
        from redis.cluster import ClusterNode, RedisCluster

        startup = [ClusterNode(h, p) for h, p in nodes]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=startup, **kwargs)
    if kind == "redis_sentinel":
        from redis.sentinel import Sentinel

        sentinel = Sentinel(nodes, **kwargs)  # type: ignore[no-untyped-call]
        return sentinel.master_for(settings.features.sentinel_master)  # type: ignore[no-untyped-call]
    host, port = nodes[0]
    return redis_lib.Redis(host=host, port=port, **kwargs)


def event_times(
    conn: Any, project: str, join_key: str, values: Sequence[str], view: str
) -> dict[str, datetime | None]:
    """The online event timestamp of ``view`` for each entity value (``None``: no row)."""
    field = f"_ts:{view}".encode()
    with conn.pipeline(transaction=False) as pipe:
        for value in values:
            pipe.hget(entity_key(project, join_key, value), field)
        raw = pipe.execute()
    return {value: parse_timestamp(item) for value, item in zip(values, raw, strict=True)}


def newest(
    conn: Any, project: str, join_key: str, view: str, *, max_keys: int
) -> tuple[datetime | None, int]:
    """The newest online event of ``view`` over at most ``max_keys`` entities of its type, and
    how many entities have a row of it."""
    pattern = key_prefix(join_key) + b"*" + project.encode("utf-8")
    keys: list[bytes] = []
    for key in conn.scan_iter(match=pattern, count=1000):
        # The project is a suffix: a longer project name ending in ours must not match.
        if _project_of(key, join_key) == project:
            keys.append(key)
        if len(keys) >= max_keys:
            break
    field = f"_ts:{view}".encode()
    stamps: Iterable[bytes | None] = []
    if keys:
        with conn.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key, field)
            stamps = pipe.execute()
    parsed = [parse_timestamp(s) for s in stamps]
    present = [s for s in parsed if s is not None]
    return (max(present) if present else None), len(present)


def _project_of(key: bytes, join_key: str) -> str | None:
    prefix = key_prefix(join_key)
    if not key.startswith(prefix):
        return None
    rest = key[len(prefix) :]
    if len(rest) < 8:
        return None
    length = struct.unpack("<I", rest[4:8])[0]
    return rest[8 + length :].decode("utf-8", "replace")
