"""Which failures are worth retrying, and how long to wait between tries."""

from __future__ import annotations

import random

import openai

from emily.inference.settings import RetrySettings


def is_retryable(exc: BaseException) -> bool:
    """Connection failures, timeouts, 429 and 5xx: the same request may succeed later or
    elsewhere. Other 4xx mean the request itself is wrong; retrying cannot help."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def backoff_s(attempt: int, settings: RetrySettings, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff before retry number ``attempt`` (1-based): uniform in
    [0, min(max, base * 2**(attempt-1))], so concurrent clients do not retry in lockstep."""
    ceiling = min(settings.max_backoff_s, settings.base_backoff_s * 2 ** (attempt - 1))
    return (rng or random).uniform(0.0, ceiling)
