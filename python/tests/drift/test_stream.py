"""The sliding-window monitor: when checks run (window, stride), patience, detection delay and
false alarms (known answers on built check lists), a real detector on a stream with a known
shift, the embedding monitor on real text, and typed errors."""

from __future__ import annotations

import numpy as np
import pytest

from emily.drift.embedding import mmd_test
from emily.drift.errors import DriftInputError
from emily.drift.numeric import ks_test
from emily.drift.results import DriftResult
from emily.drift.stream import (
    SlidingWindowMonitor,
    WindowCheck,
    detection_delay,
    false_alarms,
    run_stream,
)
from tests.drift.conftest import LexiconEmbeddings


def _check(end: int, alarm: bool) -> WindowCheck:
    result = DriftResult(
        test="ks",
        feature="x",
        statistic=0.0,
        p_value=1.0,
        alpha=0.05,
        drift=alarm,
        n_reference=1,
        n_current=1,
    )
    return WindowCheck(end, result, alarm)


def test_delay_and_false_alarms_known_answers() -> None:
    checks = [_check(9, True), _check(14, False), _check(19, False), _check(24, True)]
    # Shift begins at index 20: the alarm on the window ending at 24 has seen 5 shifted items.
    assert detection_delay(checks, 20) == 5
    assert false_alarms(checks, 20) == 1
    assert detection_delay(checks, 25) is None
    assert detection_delay(checks, 0) == 10
    with pytest.raises(DriftInputError) as info:
        detection_delay(checks, -1)
    assert info.value.field == "shift_start"


def test_checks_run_when_the_window_is_full_then_every_stride() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=200)
    checks = run_stream(reference, rng.normal(size=40), ks_test, window=10, stride=5)
    assert [c.end for c in checks] == [9, 14, 19, 24, 29, 34, 39]
    assert all(c.result.n_current == 10 and c.result.n_reference == 200 for c in checks)


def test_known_shift_is_detected_and_patience_delays_the_alarm() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(size=300)
    stream = np.concatenate([rng.normal(size=100), rng.normal(4.0, 1.0, size=100)])
    fast = run_stream(reference, stream, ks_test, window=20, stride=1, patience=1)
    slow = run_stream(reference, stream, ks_test, window=20, stride=1, patience=3)
    first = detection_delay(fast, 100)
    assert first is not None and first <= 20  # a 4-sd shift: some shifted items are enough
    assert detection_delay(slow, 100) == first + 2
    # Patience 3 needs three drifting checks in a row: never more alarms than patience 1.
    assert false_alarms(slow, 100) <= false_alarms(fast, 100)


def test_monitor_push_reports_streaks() -> None:
    monitor = SlidingWindowMonitor(np.zeros(50), ks_test, window=5, patience=2)
    outcomes = [monitor.push(v) for v in [0.0, 0.0, 0.0, 0.0]]
    assert outcomes == [None] * 4
    assert monitor.seen == 4
    first = monitor.push(10.0)
    assert first is not None and first.end == 4 and not first.alarm  # one far value: no drift
    late = monitor.extend([10.0] * 5)
    assert [c.alarm for c in late][-1] is True


def test_embedding_monitor_on_real_text(lexicon_embeddings: LexiconEmbeddings) -> None:
    words, others = lexicon_embeddings.words, lexicon_embeddings.others
    rng = np.random.default_rng(3)
    order = rng.permutation(len(words))
    reference, prose = words[order[:100]], words[order[100:]]
    # 100 prose episodes, then a chat-like stream: half emoticons or symbols.
    shifted = np.concatenate([prose[100:], others[:60]])[rng.permutation(100)]
    stream = np.concatenate([prose[:100], shifted])
    checks = run_stream(
        reference,
        stream,
        lambda ref, cur: mmd_test(ref, cur, permutations=100),
        window=25,
        stride=5,
    )
    delay = detection_delay(checks, 100)
    assert delay is not None and delay <= 50


def test_monitor_errors() -> None:
    for kwargs, field in (
        ({"window": 0}, "window"),
        ({"window": 3, "stride": 0}, "stride"),
        ({"window": 3, "patience": 0}, "patience"),
    ):
        with pytest.raises(DriftInputError) as info:
            SlidingWindowMonitor(np.zeros(10), ks_test, **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
    with pytest.raises(DriftInputError) as info:
        SlidingWindowMonitor(np.zeros(0), ks_test, window=3)
    assert info.value.field == "reference"
    monitor = SlidingWindowMonitor(np.zeros((10, 4)), mmd_test, window=3)
    monitor.push(np.zeros(4))
    with pytest.raises(DriftInputError) as info:
        monitor.push(np.zeros(5))
    assert (info.value.field, info.value.row) == ("stream", 1)
