"""Circuit-breaker state machine and retry policy (pure logic, a manual clock)."""

from __future__ import annotations

import random

import httpx2
import openai

from emily.inference.breaker import BreakerState, CircuitBreaker
from emily.inference.retry import backoff_s, is_retryable
from emily.inference.settings import RetrySettings
from tests.inference.clock import ManualClock


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=5.0, clock=clock)
    assert breaker.allow() and breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    assert breaker.retry_in_s() == 5.0
    clock.now += 5.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the single trial
    assert not breaker.allow()  # no second trial while it runs
    breaker.record_failure()  # trial failed: open again at once
    assert breaker.state is BreakerState.OPEN
    clock.now += 5.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0
    assert breaker.retry_in_s() == 0.0


def test_released_trial_allows_another() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=1.0, clock=clock)
    breaker.record_failure()
    clock.now += 1.0
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def _status_error(code: int) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://x/v1/chat/completions")
    response = httpx2.Response(code, request=request, json={"error": "x"})
    return openai.APIStatusError("x", response=response, body=None)


def test_only_transient_failures_are_retryable() -> None:
    request = httpx2.Request("POST", "http://x/v1/chat/completions")
    assert is_retryable(openai.APIConnectionError(request=request))
    assert is_retryable(openai.APITimeoutError(request=request))
    assert is_retryable(_status_error(429))
    assert is_retryable(_status_error(503))
    assert not is_retryable(_status_error(400))
    assert not is_retryable(_status_error(404))
    assert not is_retryable(ValueError("x"))


def test_backoff_is_jittered_and_capped() -> None:
    settings = RetrySettings(attempts=5, base_backoff_s=0.1, max_backoff_s=0.3)
    rng = random.Random(7)
    delays = [backoff_s(attempt, settings, rng) for attempt in (1, 2, 3, 4) for _ in range(50)]
    assert all(0 <= d <= 0.3 for d in delays)
    assert max(delays[:50]) <= 0.1
    assert len(set(delays)) > 100
