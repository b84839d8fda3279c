"""Admission control of the agents service: a bounded number of turns, one at a time per thread.

Policy (documented in docs/agents.md):

* **One turn at a time per thread, in arrival order.** Requests for a thread whose turn is
  running wait in a FIFO queue of at most ``thread_queue`` requests; beyond it: ``ThreadBusyError``
  (HTTP 409 with ``Retry-After``). So turn numbers are unique and gapless: each turn starts from
  the checkpoint the previous one left.
* **At most ``slots`` turns run at once** (default: the LLM server's parallel slots), and at most
  ``waiting`` more wait for a slot or for their thread; beyond that: ``OverloadedError`` (HTTP 429
  with ``Retry-After``). Memory use is bounded by ``slots + waiting`` requests.
* A turn is *admitted* when it gets a slot; its loop deadline counts from then. A waiting request
  waits at most about ``(slots + waiting) / slots`` turns, each bounded by the loop deadline.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from emily.errors import EmilyError


class BusyError(EmilyError):
    """The service cannot take this turn now; retry after ``retry_after_s``."""

    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, hint=f"retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class ThreadBusyError(BusyError):
    status_code = 409


class OverloadedError(BusyError):
    status_code = 429


@dataclass
class _Thread:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # wakes its waiters in FIFO order
    pending: int = 0


class Admission:
    def __init__(self, *, slots: int, waiting: int, thread_queue: int, turn_s: float) -> None:
        self.slots = slots
        self.waiting = waiting
        self.thread_queue = thread_queue
        self._retry_after_s = max(1, math.ceil(turn_s))
        self._slots = asyncio.Semaphore(slots)
        self._threads: dict[str, _Thread] = {}
        self._pending = 0
        self._running = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return self._pending - self._running

    @asynccontextmanager
    async def turn(self, thread_id: str) -> AsyncIterator[float]:
        """Wait for the thread's turn and a slot; yields the admission time
        (``time.monotonic()``). Raises ``ThreadBusyError`` or ``OverloadedError`` at once when
        the queues are full."""
        thread = self._threads.get(thread_id)
        if thread is not None and thread.pending > self.thread_queue:
            raise ThreadBusyError(
                f"thread {thread_id} already has a turn running and "
                f"{thread.pending - 1} waiting (at most {self.thread_queue})",
                retry_after_s=self._retry_after_s,
            )
        if self._pending >= self.slots + self.waiting:
            raise OverloadedError(
                f"{self._running} turns running and {self.queued} waiting "
                f"(at most {self.slots} + {self.waiting})",
                retry_after_s=self._retry_after_s,
            )
        if thread is None:
            thread = self._threads[thread_id] = _Thread()
        thread.pending += 1
        self._pending += 1
        try:
            async with thread.lock, self._slots:
                self._running += 1
                try:
                    yield time.monotonic()
                finally:
                    self._running -= 1
        finally:
            thread.pending -= 1
            self._pending -= 1
            if thread.pending == 0:
                del self._threads[thread_id]
