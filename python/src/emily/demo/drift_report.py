"""The second act in the report: drift statistics over time with their threshold, the appraisal
error before and after (per arm in the A/B period), the watch's decisions, the A/B result and
the lineage of the new champion (data hashes → run → version → alias)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np

from emily.demo.report import html_table, save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from emily.demo.drift_act import ActResult

DRIFT_CHARTS = {
    "drift": "drift-over-time.png",
    "error": "appraisal-error.png",
}
_PHASE_COLOURS = {"words": "#f2f2f2", "chat": "#fde9d9", "ab": "#e4eefb", "after": "#e6f4e6"}
_PHASE_NAMES = {
    "words": "dictionary words",
    "chat": "chat text",
    "ab": "A/B period",
    "after": "after",
}


def phase_spans(result: ActResult) -> list[tuple[str, int, int]]:
    """(phase, first turn, last turn + 1) in act order, from the stored turns."""
    spans: list[tuple[str, int, int]] = []
    for index, turn in enumerate(result.turns):
        phase = result.phase_of(turn)
        if spans and spans[-1][0] == phase:
            spans[-1] = (phase, spans[-1][1], index + 1)
        else:
            spans.append((phase, index, index + 1))
    return spans


def _shade(ax: Axes, result: ActResult) -> None:
    for phase, start, end in phase_spans(result):
        ax.axvspan(start, end, color=_PHASE_COLOURS.get(phase, "#ffffff"), zorder=0)
        ax.text(
            (start + end) / 2,
            1.01,
            _PHASE_NAMES.get(phase, phase),
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    for p in result.decisions:
        if p.decision and p.decision.action not in ("nothing", "drift-without-data", "ab-running"):
            ax.axvline(p.turn, color="#555", lw=0.8, ls="--")
            ax.annotate(
                p.decision.action,
                (p.turn, 0.02),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=7,
                va="bottom",
                ha="right",
            )


def plot_drift(result: ActResult, path: Path) -> None:
    """The stimulus-drift p-value of every monitoring pass, log scale, with the alert level."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    _shade(ax, result)
    points = [
        (p.turn, p.report.check("stimulus_drift")) for p in result.passes if p.report is not None
    ]
    tested = [(t, c.p_value) for t, c in points if c.p_value is not None]
    if tested:
        turns, values = zip(*tested, strict=True)
        ax.plot(turns, values, "o-", color="#1f5fa8", ms=3, label="MMD permutation p-value")
        threshold = next(c.threshold for _, c in points if c.threshold is not None)
        ax.axhline(threshold, color="#c0392b", lw=1, label=f"alert below α = {threshold:g}")
        ax.set_yscale("log")
        ax.set_ylim(min(min(values), threshold) / 2, 1.5)
    ax.set_xlabel("turns of the act")
    ax.set_ylabel("p-value (stimulus drift)")
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path)


def _rolling(values: Sequence[float], width: int) -> np.ndarray[Any, Any]:
    series = np.asarray(values, dtype=float)
    out = np.full(len(series), np.nan)
    for end in range(1, len(series) + 1):
        out[end - 1] = series[max(0, end - width) : end].mean()
    return out


def plot_error(result: ActResult, path: Path, width: int = 20) -> None:
    """Rolling mean absolute appraisal error per model version, and the monitor's threshold."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    _shade(ax, result)
    by_model: dict[str, list[tuple[int, float]]] = {}
    for index, turn in enumerate(result.turns):
        if turn.error is not None:
            by_model.setdefault(turn.appraised_by, []).append((index, turn.error))
    for model, points in sorted(by_model.items()):
        turns, errors = zip(*points, strict=True)
        ax.plot(turns, _rolling(errors, width), lw=1.4, label=f"{model} (rolling {width})")
    limits = [
        (p.turn, c.threshold)
        for p in result.passes
        for c in [p.report.check("champion_error")]
        if c.threshold is not None
    ]
    if limits:
        turns, values = zip(*limits, strict=True)
        ax.step(turns, values, where="post", color="#c0392b", lw=1, label="champion alert level")
    ax.set_xlabel("turns of the act")
    ax.set_ylabel("|appraised − human valence|")
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, path)


def error_rows(result: ActResult) -> list[list[str]]:
    """Mean absolute error per phase and version (and arm), with the turns it is over."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for turn in result.turns:
        if turn.error is None:
            continue
        arm = str(turn.context.get("ab_arm", ""))
        groups.setdefault((result.phase_of(turn), turn.appraised_by, arm), []).append(turn.error)
    order = {name: i for i, name in enumerate(_PHASE_NAMES)}
    return [
        [_PHASE_NAMES.get(phase, phase), model, arm or "-", str(len(v)), f"{np.mean(v):.3f}"]
        for (phase, model, arm), v in sorted(groups.items(), key=lambda kv: order.get(kv[0][0], 9))
    ]


def _decision_rows(result: ActResult) -> list[list[str]]:
    return [
        [str(p.turn), p.decision.action, p.decision.reason]
        for p in result.decisions
        if p.decision is not None and p.decision.action != "nothing"
    ]


def _ab_rows(ab: dict[str, Any]) -> list[list[str]]:
    ci = ab.get("ci", {})
    threads, turns = ab.get("threads", {}), ab.get("turns", {})
    return [
        ["experiment", str(ab.get("experiment"))],
        [
            "unit",
            f"thread: {threads.get('champion')} champion, {threads.get('challenger')} "
            f"challenger ({turns.get('champion')} / {turns.get('challenger')} turns)",
        ],
        ["effect (challenger − champion MAE)", f"{ab.get('effect', float('nan')):+.4f}"],
        [
            "always-valid 95 % CI",
            f"[{ci.get('low', float('nan')):+.4f}, {ci.get('high', float('nan')):+.4f}]",
        ],
        ["p-value (always valid)", f"{ab.get('p_value', float('nan')):.4f}"],
        ["decision", f"{ab.get('decision')}: {ab.get('reason')}"],
    ]


def _lineage_rows(lineage: dict[str, Any]) -> list[list[str]]:
    data = lineage.get("data", {})
    rows = [[f"data: {name}", md5] for name, md5 in sorted(data.get("md5", {}).items())]
    rows.append(["data: DVC remote", str(data.get("url"))])
    rows.append(["run", str(lineage.get("run", {}).get("id"))])
    rows.append(["version", str(lineage.get("version"))])
    rows.append(["aliases", ", ".join(lineage.get("aliases", [])) or "none"])
    for audit in lineage.get("audit", []):
        rows.append(
            [
                f"audit: {audit.get('action')} {audit.get('alias')}",
                f"{audit.get('at')} by {audit.get('by')} (previous v{audit.get('previous')})",
            ]
        )
    return rows


def render_act(result: ActResult) -> str:
    """The act's HTML section (charts referenced relatively)."""
    plan = result.plan
    parts = ["<h2>Second act: the stream shifts</h2>"]
    detected, promoted = result.detected_turn, result.promoted_turn
    summary = (
        f"{len(result.turns)} turns of {result.model} (first model v{result.first_version}, "
        f"trained on dictionary words only). The stream turns to chat text after turn "
        f"{result.onset_turn}; a monitoring pass every {plan.monitor_every} turns, a watch pass "
        f"every {plan.watch_every}; window {plan.window}, reference {plan.reference}. "
    )
    if detected is not None:
        summary += (
            f"Drift detected at turn {detected} ({detected - result.onset_turn} after the onset). "
        )
    if promoted is not None and result.onset_to_promoted_s is not None:
        summary += (
            f"New champion v{result.new_champion} at turn {promoted}: "
            f"{promoted - result.onset_turn} turns and {result.onset_to_promoted_s:.0f} s after "
            "the onset. "
        )
    summary += f"The act took {result.seconds:.0f} s."
    parts.append(f"<p>{html.escape(summary)}</p>")
    parts.extend(f"<p class='note'>{html.escape(p)}</p>" for p in result.problems)
    parts.append(f"<img src='{DRIFT_CHARTS['drift']}' alt='Drift statistics over time'>")
    parts.append(f"<img src='{DRIFT_CHARTS['error']}' alt='Appraisal error over time'>")
    parts.append("<h3>Appraisal error before and after</h3>")
    parts.append(
        html_table(["phase", "model", "A/B arm", "labelled turns", "MAE"], error_rows(result))
    )
    parts.append("<h3>Watch decisions</h3>")
    parts.append(html_table(["after turn", "action", "reason"], _decision_rows(result)))
    ab = result.ab_evidence
    if ab is not None:
        parts.append("<h3>A/B test (mSPRT, thread = unit)</h3>")
        parts.append(html_table(["", ""], _ab_rows(ab)))
    if result.lineage is not None:
        parts.append(f"<h3>Lineage of the new champion v{result.new_champion}</h3>")
        parts.append(html_table(["", ""], _lineage_rows(result.lineage)))
    return "".join(parts)


def write_act(result: ActResult, directory: Path) -> str:
    """The charts into ``directory`` and the act as JSON (``drift-act.json``); the HTML."""
    directory.mkdir(parents=True, exist_ok=True)
    plot_drift(result, directory / DRIFT_CHARTS["drift"])
    plot_error(result, directory / DRIFT_CHARTS["error"])
    (directory / "drift-act.json").write_text(
        json.dumps(summary(result), indent=2, default=str) + "\n", encoding="utf-8"
    )
    return render_act(result)


def summary(result: ActResult) -> dict[str, Any]:
    """The act's figures (what docs/benchmarks.md quotes)."""
    return {
        "model": result.model,
        "first_version": result.first_version,
        "new_champion": result.new_champion,
        "turns": len(result.turns),
        "onset_turn": result.onset_turn,
        "detected_turn": result.detected_turn,
        "promoted_turn": result.promoted_turn,
        "onset_to_promoted_s": result.onset_to_promoted_s,
        "act_seconds": result.seconds,
        "error": error_rows(result),
        "decisions": _decision_rows(result),
        "ab": result.ab_evidence,
        "problems": result.problems,
    }
