"""Typed errors of the benchmark: bad input matrices name the file they came from."""

from __future__ import annotations

from emily.errors import EmilyError


class BenchInputError(EmilyError):
    """A base or query matrix is unusable (shape, values, dimension, file format)."""


class BenchConfigError(EmilyError):
    """Benchmark options contradict each other or the data."""
