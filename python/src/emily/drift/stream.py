"""The sliding-window monitor of a stream and its detection delay.

A monitor holds a fixed reference sample and the last ``window`` items of a stream (episodes:
an embedding row, a feature value, a prediction). Once the window is full it runs its detector
every ``stride`` items and raises an alarm when the last ``patience`` checks all found drift.
Repeated checks of overlapping windows are not independent tests: ``patience > 1`` (or a smaller
α) is how a live monitor trades detection delay for fewer false alarms over a long no-drift
stream; the calibration (scripts/drift-calibration.py) measures both sides.

Detection delay: with the first shifted item at index ``shift_start`` (0-based), the delay is the
number of shifted items seen when the first alarm at or after the shift is raised
(``end - shift_start + 1``); alarms on windows ending before ``shift_start`` are false alarms.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from emily.drift.errors import DriftInputError
from emily.drift.results import DriftResult

Detector = Callable[[npt.NDArray[Any], npt.NDArray[Any]], DriftResult]


@dataclass(frozen=True)
class WindowCheck:
    """One check: the window ended at stream index ``end`` (0-based, inclusive)."""

    end: int
    result: DriftResult
    alarm: bool


class SlidingWindowMonitor:
    """Feed items with :meth:`push`; a :class:`WindowCheck` comes back whenever a check ran."""

    def __init__(
        self,
        reference: npt.ArrayLike,
        detector: Detector,
        *,
        window: int,
        stride: int = 1,
        patience: int = 1,
    ) -> None:
        for name, value in (("window", window), ("stride", stride), ("patience", patience)):
            if value < 1:
                raise DriftInputError(f"must be at least 1, got {value}", field=name)
        self.reference = np.asarray(reference)
        if self.reference.size == 0:
            raise DriftInputError("the reference sample is empty", field="reference")
        self.detector = detector
        self.window = window
        self.stride = stride
        self.patience = patience
        self._buffer: deque[npt.NDArray[Any]] = deque(maxlen=window)
        self._seen = 0
        self._streak = 0

    @property
    def seen(self) -> int:
        """Items pushed so far."""
        return self._seen

    def push(self, item: npt.ArrayLike) -> WindowCheck | None:
        value = np.asarray(item)
        if value.shape != self.reference.shape[1:]:
            raise DriftInputError(
                f"item of shape {value.shape}, the reference rows have {self.reference.shape[1:]}",
                field="stream",
                row=self._seen,
            )
        self._buffer.append(value)
        self._seen += 1
        full = len(self._buffer) == self.window
        if not full or (self._seen - self.window) % self.stride:
            return None
        result = self.detector(self.reference, np.stack(self._buffer))
        self._streak = self._streak + 1 if result.drift else 0
        return WindowCheck(self._seen - 1, result, self._streak >= self.patience)

    def extend(self, items: Iterable[npt.ArrayLike]) -> list[WindowCheck]:
        checks = []
        for item in items:
            check = self.push(item)
            if check is not None:
                checks.append(check)
        return checks


def run_stream(
    reference: npt.ArrayLike,
    stream: Iterable[npt.ArrayLike],
    detector: Detector,
    *,
    window: int,
    stride: int = 1,
    patience: int = 1,
) -> list[WindowCheck]:
    """Every check of a fresh monitor over the whole ``stream``."""
    monitor = SlidingWindowMonitor(
        reference, detector, window=window, stride=stride, patience=patience
    )
    return monitor.extend(stream)


def detection_delay(checks: Sequence[WindowCheck], shift_start: int) -> int | None:
    """Shifted items seen at the first alarm at or after ``shift_start``; ``None``: never."""
    if shift_start < 0:
        raise DriftInputError(f"must be >= 0, got {shift_start}", field="shift_start")
    for check in checks:
        if check.alarm and check.end >= shift_start:
            return check.end - shift_start + 1
    return None


def false_alarms(checks: Sequence[WindowCheck], shift_start: int) -> int:
    """Alarms on windows that ended before the shift began."""
    return sum(1 for check in checks if check.alarm and check.end < shift_start)
