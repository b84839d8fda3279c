"""Stored contexts that can always be rendered.

New contexts are bounded on the way in (``EpisodeLimits``), but a row written before the cap,
or by plain SQL, may be nested arbitrarily deep: ``json.loads`` then raises ``RecursionError``
while loading it, and pydantic's serialiser stops at depth 255 ("Maximum serialization depth
exceeded"), so one such row used to break every JSON search. Loading and rendering here never
recurse, and clip what is deeper than any accepted context could be.
"""

from __future__ import annotations

import json
from typing import Any

# The ceiling of ``max_context_depth``: no context accepted under any setting is clipped.
MAX_RENDER_DEPTH = 64
CLIPPED = "[nested too deeply to show]"
UNLOADABLE = {"_unrenderable": "context nested too deeply to load"}


def loads_jsonb(data: bytes | bytearray | memoryview | str) -> Any:
    """psycopg's jsonb loader for the store's connections: a document too deep for
    ``json.loads`` becomes a marker object instead of failing the whole query."""
    try:
        return json.loads(bytes(data) if not isinstance(data, str) else data)
    except RecursionError:
        return dict(UNLOADABLE)


def clip_depth(value: Any, max_depth: int = MAX_RENDER_DEPTH) -> Any:
    """A copy of ``value`` in which containers deeper than ``max_depth`` are replaced by a
    marker string; iterative, so any depth is safe."""
    if not isinstance(value, dict | list):
        return value
    root: dict[str, Any] | list[Any] = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, dict[str, Any] | list[Any], int]] = [(value, root, 0)]
    while stack:
        source, target, depth = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, child in items:
            copied: Any = child
            if isinstance(child, dict | list):
                if depth + 1 > max_depth:
                    copied = CLIPPED
                else:
                    copied = {} if isinstance(child, dict) else []
                    stack.append((child, copied, depth + 1))
            if isinstance(target, dict):
                target[str(key)] = copied
            else:
                target.append(copied)
    return root
