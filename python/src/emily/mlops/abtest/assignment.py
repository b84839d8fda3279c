"""Sticky, deterministic assignment of threads to the arms of an A/B test.

A thread's arm is a pure function of ``(experiment, thread_id, challenger_share)``: no state to
store, the same answer in every process and after every restart, so all episodes of a thread
see the same model (a thread that switched models mid-conversation would mix both arms'
effects in one outcome). The hash is BLAKE2b, not Python's ``hash()``, which is salted per
process. Keying on the experiment as well gives every experiment its own independent split,
so the threads that were challengers in one test are not the challengers of the next.

Raising ``challenger_share`` only moves threads from champion to challenger (a thread is a
challenger when its uniform draw is below the share), never the other way round.
"""

from __future__ import annotations

import hashlib
import math
from typing import Final, Literal

from emily.errors import EmilyError

Arm = Literal["champion", "challenger"]
CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"

# 8 bytes → 64-bit integer → exactly representable steps of 2**-64 in [0, 1); a double keeps
# 53 of those bits, far finer than any share anyone configures.
_DIGEST_BYTES: Final = 8
_SCALE: Final = float(2 ** (8 * _DIGEST_BYTES))


class ABTestError(EmilyError, ValueError):
    """Bad input to an A/B test (a share outside [0, 1], a NaN outcome, ...).

    A ``ValueError`` too, so callers that guard arguments with ``except ValueError`` see it."""


def experiment_name(champion: str, challenger: str) -> str:
    """The experiment of two model versions (``<model>/<version>`` each)."""
    return f"{champion}-vs-{challenger}"


def unit_hash(experiment: str, thread_id: str) -> float:
    """A uniform draw in ``[0, 1)`` fixed by ``experiment`` and ``thread_id``."""
    # The NUL separator keeps ("ab", "c") and ("a", "bc") apart; neither part contains one
    # in practice, and a collision would only merge two threads' draws, never break stickiness.
    key = f"{experiment}\x00{thread_id}".encode()
    digest = hashlib.blake2b(key, digest_size=_DIGEST_BYTES).digest()
    return int.from_bytes(digest, "big") / _SCALE


def assign_arm(thread_id: str, *, experiment: str, challenger_share: float) -> Arm:
    """The arm of ``thread_id`` in ``experiment``; the challenger gets ``challenger_share`` of
    the threads (0 → none, 1 → all)."""
    if isinstance(challenger_share, bool) or not isinstance(challenger_share, int | float):
        raise ABTestError(
            f"must be a number in [0, 1], got {challenger_share!r}", field="challenger_share"
        )
    if not (math.isfinite(challenger_share) and 0.0 <= challenger_share <= 1.0):
        raise ABTestError(f"must be in [0, 1], got {challenger_share!r}", field="challenger_share")
    if not isinstance(experiment, str) or not experiment:
        raise ABTestError("must be a non-empty string", field="experiment")
    if not isinstance(thread_id, str):
        raise ABTestError(f"must be a string, got {type(thread_id).__name__}", field="thread_id")
    # Strict "<": share 0 assigns nobody (the draw is never below 0), share 1 everybody (the
    # draw is always below 1).
    return CHALLENGER if unit_hash(experiment, thread_id) < challenger_share else CHAMPION
