"""The one error type of the drift detectors."""

from __future__ import annotations

from emily.errors import EmilyError


class DriftInputError(EmilyError):
    """A sample handed to a detector is empty, too small, non-finite or of the wrong shape.

    ``field`` names the argument (``reference``, ``current``, a column name) and ``row`` the
    0-based position of the first offending value when there is one.
    """
