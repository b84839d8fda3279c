"""A value kept current in the background: loaded by a worker thread, re-read every
``interval_s``, never fetched inside a turn (the registry-backed appraiser and prompt)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod


class Follower(ABC):
    def __init__(self, interval_s: float, name: str) -> None:
        self._interval_s = interval_s
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def refresh(self) -> bool:
        """Load the current value; ``False`` when that failed (the previous value stays)."""

    def start(self) -> None:
        """Load in the background and keep following until ``close``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._follow, name=self._name, daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _follow(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self._interval_s)
