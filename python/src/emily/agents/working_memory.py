"""Short-term working memory and the workspace broadcast in Redis, with TTLs.

* ``emily:wm:<thread>``: the latest working state (JSON), ``SET ... EX ttl``;
* ``emily:workspace:<thread>``: a stream of broadcasts, ``XADD ... MAXLEN ~ n`` and the same TTL.

Redis is optional for the loop: every call has a short timeout, and after a failure Redis is left
alone for ``cooldown_s`` so a dead server costs one timeout, not one per turn.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from emily.telemetry.logs import get_logger

log = get_logger("agents.working_memory")


class WorkingMemory:
    def __init__(
        self,
        url: str | None,
        *,
        timeout_s: float,
        ttl_s: int,
        maxlen: int,
        cooldown_s: float = 30.0,
    ) -> None:
        self.ttl_s = ttl_s
        self.maxlen = maxlen
        self.timeout_s = timeout_s
        self.cooldown_s = cooldown_s
        self._down_until = 0.0
        self._client: aioredis.Redis | None = None
        if url is not None:
            self._client = aioredis.Redis.from_url(
                url,
                socket_connect_timeout=timeout_s,
                socket_timeout=timeout_s,
                retry=Retry(NoBackoff(), 0),
                decode_responses=True,
            )

    @staticmethod
    def wm_key(thread_id: str) -> str:
        return f"emily:wm:{thread_id}"

    @staticmethod
    def stream_key(thread_id: str) -> str:
        return f"emily:workspace:{thread_id}"

    async def _run(self, op: str, coro_factory: Any) -> Any:
        """Run one Redis operation; returns the error text instead of raising."""
        if self._client is None:
            return RedisUnavailable("redis: not configured")
        if time.monotonic() < self._down_until:
            return RedisUnavailable("redis: unavailable (cooling down after an error)")
        try:
            return await asyncio.wait_for(coro_factory(self._client), self.timeout_s * 2)
        except (RedisError, OSError, TimeoutError) as exc:
            self._down_until = time.monotonic() + self.cooldown_s
            log.warning("redis_unavailable", op=op, error=type(exc).__name__)
            return RedisUnavailable(f"redis: {op} failed ({type(exc).__name__})")

    async def broadcast(self, thread_id: str, message: dict[str, Any]) -> str | None:
        """Publish a workspace broadcast; returns an error note or ``None``."""

        async def op(client: aioredis.Redis) -> None:
            fields = {"data": json.dumps(message, separators=(",", ":"))}
            key = self.stream_key(thread_id)
            async with client.pipeline(transaction=False) as pipe:
                pipe.xadd(key, fields, maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
                pipe.expire(key, self.ttl_s)
                await pipe.execute()

        result = await self._run("broadcast", op)
        return str(result) if isinstance(result, RedisUnavailable) else None

    async def remember(self, thread_id: str, state: dict[str, Any]) -> str | None:
        """Store the thread's working state with a TTL; returns an error note or ``None``."""

        async def op(client: aioredis.Redis) -> None:
            await client.set(self.wm_key(thread_id), json.dumps(state), ex=self.ttl_s)

        result = await self._run("remember", op)
        return str(result) if isinstance(result, RedisUnavailable) else None

    async def recall(self, thread_id: str) -> dict[str, Any] | None:
        async def op(client: aioredis.Redis) -> str | None:
            value = await client.get(self.wm_key(thread_id))
            return None if value is None else str(value)

        result = await self._run("recall", op)
        if isinstance(result, RedisUnavailable) or result is None:
            return None
        loaded: dict[str, Any] = json.loads(result)
        return loaded

    async def broadcasts(self, thread_id: str, count: int = 10) -> list[dict[str, Any]]:
        async def op(client: aioredis.Redis) -> Any:
            return await client.xrevrange(self.stream_key(thread_id), count=count)

        result = await self._run("broadcasts", op)
        if isinstance(result, RedisUnavailable):
            return []
        return [json.loads(fields["data"]) for _, fields in result]

    async def ping(self) -> bool:
        async def op(client: aioredis.Redis) -> bool:
            return bool(await client.ping())  # type: ignore[misc]

        self._down_until = 0.0
        result = await self._run("ping", op)
        return result is True

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class RedisUnavailable(str):
    """An error note, distinguishable from a value Redis returned."""

    __slots__ = ()
