"""The demo report: PNG charts (matplotlib, Agg) and a self-contained ``index.html`` that
references them relatively, so the folder can be copied or served as it is."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

# No display on servers and CI: render to files only.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from pydantic import BaseModel, Field

CHARTS = {
    "affect": "affect-trajectory.png",
    "wins": "layer-wins.png",
    "latency": "loop-latency.png",
    "degraded": "degraded-decisions.png",
}
LAYERS = ("instinct", "affect", "cognition")


class LoopRecord(BaseModel):
    """One turn of the scripted day as the report sees it."""

    index: int
    at: datetime
    text: str
    valence: float = Field(ge=-1, le=1)
    arousal: float = Field(ge=-1, le=1)
    dominance: float = Field(ge=-1, le=1)
    winner: str
    policy: str
    latency_ms: float = Field(ge=0)
    degraded: bool
    reason: str | None = None
    tight_deadline: bool = False
    features_missing: list[str] = Field(
        default_factory=list, description="Feature views the turn had no usable value of."
    )
    appraised_by: str = Field(default="words", description="What estimated the valence.")


class FeatureRow(BaseModel):
    """One feature view in the freshness panel (from ``emily.features.monitor``)."""

    view: str
    ttl_s: float
    online_age_s: float | None
    offline_age_s: float | None
    rows: int
    flags: list[str]


class SearchRow(BaseModel):
    """One search result shown in the report (the memory part of the demo)."""

    query: str
    mode: str
    content: str
    similarity: float
    affect: tuple[float, float, float]


def _hours(records: Sequence[LoopRecord]) -> list[float]:
    """Hour of the day (UTC) of each turn, counted from midnight of the first turn's day."""
    if not records:
        return []
    first = records[0].at.astimezone(UTC)
    midnight = first.replace(hour=0, minute=0, second=0, microsecond=0)
    return [(r.at - midnight).total_seconds() / 3600.0 for r in records]


def save_figure(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_affect(records: Sequence[LoopRecord], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = _hours(records)
    for name, colour in (("valence", "tab:green"), ("arousal", "tab:red")):
        ax.plot(x, [getattr(r, name) for r in records], marker="o", ms=3, label=name, c=colour)
    ax.plot(x, [r.dominance for r in records], marker="o", ms=3, label="dominance", c="tab:blue")
    ax.set_ylim(-1.05, 1.05)
    ax.axhline(0, c="grey", lw=0.5)
    ax.set_ylabel("affect")
    ax.set_title("Affect trajectory over the day (after each turn)")
    ax.legend(loc="lower left", ncols=3, fontsize=8)
    ax.set_xlabel("hour of the day (UTC)")
    save_figure(fig, path)


def plot_wins(records: Sequence[LoopRecord], path: Path) -> None:
    counts = Counter(r.winner for r in records)
    names = [*LAYERS, *sorted(set(counts) - set(LAYERS))]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    bars = ax.bar(names, [counts.get(n, 0) for n in names], color="tab:purple")
    ax.bar_label(bars)
    ax.set_ylabel("decisions won")
    ax.set_title("Workspace winner per layer")
    save_figure(fig, path)


def plot_latency(records: Sequence[LoopRecord], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    values = [r.latency_ms for r in records]
    ax.hist(values, bins=min(20, max(5, len(values) // 2)), color="tab:orange")
    ax.set_xlabel("loop latency (ms)")
    ax.set_ylabel("turns")
    ax.set_title("Full loop latency")
    save_figure(fig, path)


def plot_degraded(records: Sequence[LoopRecord], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 2.6))
    x = _hours(records)
    y = [1 if r.degraded else 0 for r in records]
    colours = ["tab:red" if r.degraded else "tab:green" for r in records]
    ax.scatter(x, y, c=colours, s=30)
    ax.set_yticks([0, 1], ["full", "degraded"])
    ax.set_ylim(-0.5, 1.5)
    ax.set_title(f"Degraded decisions: {sum(y)} of {len(y)}")
    ax.set_xlabel("hour of the day (UTC)")
    save_figure(fig, path)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}"
    "table{border-collapse:collapse;font-size:0.85em;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:0.25em 0.5em;text-align:left}"
    "th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}"
    ".note{color:#555}"
)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _feature_panel(
    records: Sequence[LoopRecord], features: Sequence[FeatureRow], at: datetime | None
) -> str:
    """Freshness of each feature view (age of its newest online and offline event against its
    TTL, as of ``at``) and how many of the day's turns had a usable value of it."""
    when = f" at {at:%H:%M} UTC" if at is not None else ""
    rows = []
    for f in features:
        had = sum(f.view not in r.features_missing for r in records)
        rows.append(
            [
                f.view,
                _age(f.ttl_s),
                _age(f.online_age_s),
                _age(f.offline_age_s),
                str(f.rows),
                f"{had}/{len(records)}" if records else "-",
                ", ".join(f.flags) or "fresh",
            ]
        )
    return f"<h2>Feature store: freshness{html.escape(when)}</h2>" + html_table(
        ["view", "TTL", "online age", "offline age", "recent rows", "turns with it", "status"],
        rows,
    )


def render_html(
    records: Sequence[LoopRecord],
    searches: Sequence[SearchRow],
    *,
    title: str,
    notes: Sequence[str],
    charts: bool,
    features: Sequence[FeatureRow] = (),
    features_at: datetime | None = None,
    sections: Sequence[str] = (),
) -> str:
    """The page; ``sections`` are further HTML sections (the second act), appended last."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts.extend(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    if searches:
        parts.append("<h2>Episodic memory: search results</h2>")
        parts.append(
            html_table(
                ["query", "mode", "similarity", "V/A/D", "episode"],
                [
                    [
                        s.query,
                        s.mode,
                        f"{s.similarity:.3f}",
                        "/".join(f"{v:+.2f}" for v in s.affect),
                        s.content,
                    ]
                    for s in searches
                ],
            )
        )
    if records and charts:
        latencies = [r.latency_ms for r in records]
        degraded = sum(r.degraded for r in records)
        parts.append("<h2>The scripted day</h2>")
        parts.append(
            f"<p>{len(records)} turns, {degraded} degraded; loop latency p50 "
            f"{_percentile(latencies, 50):.0f} ms, p95 {_percentile(latencies, 95):.0f} ms.</p>"
        )
        alts = {
            "affect": "Affect trajectory",
            "wins": "Per-layer proposal wins",
            "latency": "Loop latency histogram",
            "degraded": "Degraded decisions",
        }
        parts.extend(
            f"<img src='{CHARTS[key]}' alt='{html.escape(alt)}'>" for key, alt in alts.items()
        )
        parts.append(
            html_table(
                ["#", "time", "stimulus", "winner", "policy", "V/A/D", "ms", "degraded"],
                [
                    [
                        str(r.index),
                        f"{r.at:%H:%M}",
                        r.text,
                        r.winner,
                        r.policy,
                        f"{r.valence:+.2f}/{r.arousal:+.2f}/{r.dominance:+.2f}",
                        f"{r.latency_ms:.0f}",
                        (r.reason or "yes") if r.degraded else "",
                    ]
                    for r in records
                ],
            )
        )
    if features:
        parts.append(_feature_panel(records, features, features_at))
    parts.extend(sections)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )


def write_report(
    directory: Path,
    records: Sequence[LoopRecord],
    searches: Sequence[SearchRow] = (),
    *,
    title: str = "Emily Sovereign demo",
    notes: Sequence[str] = (),
    features: Sequence[FeatureRow] = (),
    features_at: datetime | None = None,
    sections: Sequence[str] = (),
) -> Path:
    """Write the charts (when there are turns) and ``index.html``; returns the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    if records:
        plot_affect(records, directory / CHARTS["affect"])
        plot_wins(records, directory / CHARTS["wins"])
        plot_latency(records, directory / CHARTS["latency"])
        plot_degraded(records, directory / CHARTS["degraded"])
    page = directory / "index.html"
    page.write_text(
        render_html(
            records,
            searches,
            title=title,
            notes=notes,
            charts=bool(records),
            features=features,
            features_at=features_at,
            sections=sections,
        ),
        encoding="utf-8",
    )
    return page
