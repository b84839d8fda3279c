#!/usr/bin/env python3
"""Calibrate the drift detectors of ``emily.drift`` on real data; JSON to docs/bench.

Text (the stimulus stream): the VADER lexicon of the ``vadersentiment`` wheel embedded with the
project's embedder. Alphabetic entries are the prose; they are split at random into a training
part (the stand-in appraisal model), a reference pool and a stream pool, so reference and stream
never share an entry. The shifted stream mixes non-alphabetic entries (emoticons, symbols,
``<3``-style slang) into prose with probability ``fraction`` per episode; 0.5 is the shift the
targets refer to, 0.1/0.25/1.0 trace the frontier. A second scenario uses WordNet glosses and
the demo day's sentences as the prose.

Tabular: the US-census employment data of Massachusetts (ACS 2015-2018, from the nannyml
wheel; ``scripts/fetch-census-data.py``): 2015 is the reference, 2016-2018 drift for real.

Measured, per detector and window: false-positive rate at alpha over no-drift window pairs
(reference and current drawn without replacement from disjoint pools of the same data),
power on shifted windows, detection delay of the sliding-window monitor after the shift begins,
and cost per check. Fixed seeds throughout; the same command gives the same numbers (timings
aside). BLAS is pinned to one thread (see the ADR: on 2 shared cores a threaded BLAS is 3-5x
slower for these matrix sizes).

Usage (from the repository root)::

    cd python && .venv/bin/python ../scripts/drift-calibration.py [--quick]
    # the Evidently comparison, in a scratch venv holding evidently==0.7.23 (never the project's):
    PYTHONPATH=python/src /path/to/venv/bin/python scripts/drift-calibration.py --evidently
"""

from __future__ import annotations

import os

# Before numpy loads: the checks multiply matrices of a few hundred rows, where a threaded
# BLAS on a loaded 2-core machine spends more time spinning than computing.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import hashlib
import importlib.resources
import importlib.util
import json
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python" / "src"))

from emily.drift.embedding import classifier_test, mmd_test  # noqa: E402
from emily.drift.numeric import ks_test, psi_test  # noqa: E402
from emily.drift.report import feature_report, prediction_drift  # noqa: E402
from emily.drift.results import DriftResult  # noqa: E402
from emily.drift.stream import SlidingWindowMonitor, WindowCheck, detection_delay  # noqa: E402

SEED = 20261201
ALPHA = 0.05
FRACTIONS = (0.1, 0.25, 0.5, 1.0)
TARGET_FRACTION = 0.5
TARGETS = {"fpr_max": 0.05, "power_min": 0.9, "delay_max": 100, "cost_ms_max": 200.0}
OUT = ROOT / "docs" / "bench" / "drift-calibration.json"
CENSUS_FEATURES = (
    "AGEP",
    "SCHL",
    "MAR",
    "RELP",
    "DIS",
    "ESP",
    "CIT",
    "MIG",
    "MIL",
    "ANC",
    "NATIVITY",
    "DEAR",
    "DEYE",
    "DREM",
    "SEX",
    "RAC1P",
)
GLOSSES = 2000

Array = np.ndarray[Any, np.dtype[np.float64]]
Detector = Callable[[Array, Array], DriftResult]


# ----------------------------------------------------------------------------- data


def lexicon() -> tuple[list[str], Array]:
    """Tokens and mean human valence ([-4, 4]) of the VADER lexicon, in file order."""
    text = (importlib.resources.files("vaderSentiment") / "vader_lexicon.txt").read_text("utf-8")
    tokens, means = [], []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 2:
            tokens.append(fields[0])
            means.append(float(fields[1]))
    return tokens, np.asarray(means)


def embed_cached(texts: Sequence[str], cache: Path, tag: str) -> Array:
    """Embeddings of ``texts``, cached as ``<tag>-<model>-<hash of texts>.npy``. Without the
    project's environment (the Evidently venv) any model's cached file for these texts is used."""
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:16]
    try:
        from emily.config import load_settings
    except ImportError:
        found = sorted(cache.glob(f"{tag}-*-{digest}.npy"))
        if not found:
            raise
        return np.load(found[0]).astype(np.float64)
    settings = load_settings()
    model = hashlib.sha256(settings.embedder.model.encode("utf-8")).hexdigest()[:8]
    path = cache / f"{tag}-{model}-{digest}.npy"
    if path.is_file():
        return np.load(path).astype(np.float64)
    from emily.memory.embedding.factory import create_embedder

    embedder = create_embedder(settings)
    started = time.perf_counter()
    vectors = np.concatenate(
        [embedder.embed(list(texts[i : i + 512])) for i in range(0, len(texts), 512)]
    )
    print(f"embedded {len(texts)} {tag} texts in {time.perf_counter() - started:.0f} s")
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors.astype(np.float64)


@dataclass
class TextPools:
    reference: Array  # the monitor's reference sample is drawn from here
    prose: Array  # no-drift stream items
    shifted: Array  # emoticons / symbols mixed in after the shift
    description: str


def split_three(count: int, rng: np.random.Generator, shares: Sequence[float]) -> list[Array]:
    order = rng.permutation(count)
    cuts = np.cumsum([int(s * count) for s in shares[:-1]])
    return list(np.split(order, cuts))


def text_data(cache: Path) -> dict[str, Any]:
    tokens, valence = lexicon()
    vectors = embed_cached(tokens, cache, "vader")
    alpha = np.array([t.isalpha() for t in tokens])
    words, others = np.flatnonzero(alpha), np.flatnonzero(~alpha)
    train, ref, prose = split_three(len(words), np.random.default_rng(SEED), (0.3, 0.35, 0.35))
    pools = {
        "lexicon": TextPools(
            vectors[words[ref]],
            vectors[words[prose]],
            vectors[others],
            "VADER alphabetic entries (reference and stream pools disjoint) vs non-alphabetic",
        )
    }
    sys.path.insert(0, str(ROOT / "python" / "src"))
    from emily.demo.corpus import read_synsets, select_synsets
    from emily.demo.day import DAY

    sentences = [s.content for s in select_synsets(list(read_synsets()), GLOSSES)]
    sentences += sorted({event.text for event in DAY})
    prose_vectors = embed_cached(sentences, cache, "prose")
    half_ref, half_stream = split_three(len(sentences), np.random.default_rng(SEED + 1), (0.5, 0.5))
    pools["glosses"] = TextPools(
        prose_vectors[half_ref],
        prose_vectors[half_stream],
        vectors[others],
        f"{GLOSSES} WordNet glosses + {len(DAY)} demo-day events vs VADER non-alphabetic entries",
    )
    return {
        "pools": pools,
        "tokens": tokens,
        "valence": valence,
        "vectors": vectors,
        "words": words,
        "others": others,
        "split": {"train": train, "reference": ref, "prose": prose},
    }


def census(directory: Path) -> pd.DataFrame:
    reference = pd.read_parquet(directory / "employment_MA_reference.pq")
    analysis = pd.read_parquet(directory / "employment_MA_analysis.pq")
    target = pd.read_parquet(directory / "employment_MA_analysis_target.pq")
    return pd.concat([reference, analysis.merge(target, on="id")], ignore_index=True)


def census_dir(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    spec = importlib.util.spec_from_file_location(
        "fetch_census", ROOT / "scripts" / "fetch-census-data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path: Path = module.fetch(module.default_cache_dir())
    return path


# ------------------------------------------------------------------------ statistics


def rate(flags: Sequence[bool]) -> dict[str, Any]:
    """Share of true flags with its Clopper–Pearson 95 % interval."""
    k, n = int(np.sum(flags)), len(flags)
    lo = 0.0 if k == 0 else float(stats.beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(0.975, k + 1, n - k))
    return {"rate": round(k / n, 4), "k": k, "n": n, "ci95": [round(lo, 4), round(hi, 4)]}


def cost(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "median_ms": round(float(np.median(ms)), 2),
        "p95_ms": round(float(np.quantile(ms, 0.95)), 2),
    }


def timed(detector: Detector, reference: Array, current: Array) -> tuple[DriftResult, float]:
    started = time.perf_counter()
    result = detector(reference, current)
    return result, time.perf_counter() - started


def draw(pool: Array, size: int, rng: np.random.Generator) -> Array:
    return pool[rng.choice(len(pool), size, replace=False)]


def shifted_window(pools: TextPools, size: int, fraction: float, rng: np.random.Generator) -> Array:
    """``size`` episodes, each non-alphabetic with probability ``fraction`` (order shuffled)."""
    odd = int(rng.binomial(size, fraction))
    window = np.concatenate([draw(pools.shifted, odd, rng), draw(pools.prose, size - odd, rng)])
    return window[rng.permutation(size)]


# ------------------------------------------------------------------ window-pair studies


def pair_study(
    detector: Detector,
    pools: TextPools,
    n_ref: int,
    window: int,
    *,
    pairs: int,
    power_pairs: int,
    seed: int,
    fractions: Sequence[float] = FRACTIONS,
) -> dict[str, Any]:
    """FPR over ``pairs`` no-drift pairs, power per shift fraction, cost per check."""
    null_flags, null_p, seconds = [], [], []
    for i in range(pairs):
        rng = np.random.default_rng([seed, 0, i])
        result, took = timed(
            detector, draw(pools.reference, n_ref, rng), draw(pools.prose, window, rng)
        )
        null_flags.append(result.drift)
        null_p.append(result.p_value if result.p_value is not None else np.nan)
        seconds.append(took)
    power = {}
    for j, fraction in enumerate(fractions):
        flags = []
        for i in range(power_pairs):
            rng = np.random.default_rng([seed, 1 + j, i])
            reference = draw(pools.reference, n_ref, rng)
            result, took = timed(detector, reference, shifted_window(pools, window, fraction, rng))
            flags.append(result.drift)
            seconds.append(took)
        power[str(fraction)] = rate(flags)
    p = np.asarray(null_p)
    uniformity = (
        {f"share_p_below_{q}": round(float(np.mean(p < q)), 4) for q in (0.01, 0.05, 0.1, 0.5)}
        if np.isfinite(p).all()
        else {}
    )
    return {
        "n_reference": n_ref,
        "window": window,
        "fpr": rate(null_flags),
        "null_p_values": uniformity,
        "power": power,
        "cost": cost(seconds),
    }


def stream_study(
    detector: Detector,
    pools: TextPools,
    n_ref: int,
    window: int,
    *,
    stride: int,
    fraction: float,
    streams: int,
    post: int,
    seed: int,
    alphas: Sequence[float] = (0.05, 0.01),
    patiences: Sequence[int] = (1, 2, 3),
) -> dict[str, Any]:
    """Sliding-window monitor over prose then shifted episodes; delay and false alarms for
    each (alpha, patience), all read from one run's p-values per stream."""
    pre = window + 200
    runs: list[list[WindowCheck]] = []
    seconds: list[float] = []
    for s in range(streams):
        rng = np.random.default_rng([seed, s])
        reference = draw(pools.reference, n_ref, rng)
        odd = rng.random(post) < fraction
        prose = draw(pools.prose, pre + int((~odd).sum()), rng)
        after = np.empty((post, *prose.shape[1:]))
        after[odd] = draw(pools.shifted, int(odd.sum()), rng)
        after[~odd] = prose[pre:]
        stream = np.concatenate([prose[:pre], after])

        def clocked(ref: Array, cur: Array) -> DriftResult:
            result, took = timed(detector, ref, cur)
            seconds.append(took)
            return result

        monitor = SlidingWindowMonitor(reference, clocked, window=window, stride=stride)
        runs.append(monitor.extend(stream))
    combos = []
    for alpha in alphas:
        for patience in patiences:
            delays: list[int | None] = []
            alarmed: list[bool] = []
            false_alarms, pre_checks = 0, 0
            for checks in runs:
                relabelled = relabel(checks, alpha, patience)
                delays.append(detection_delay(relabelled, pre))
                before = [c for c in relabelled if c.end < pre]
                pre_checks += len(before)
                alarms = sum(c.alarm for c in before)
                false_alarms += alarms
                alarmed.append(alarms > 0)
            found = np.array([d for d in delays if d is not None], dtype=float)
            combos.append(
                {
                    "alpha": alpha,
                    "patience": patience,
                    "detected": rate([d is not None for d in delays]),
                    "within_target": rate(
                        [d is not None and d <= TARGETS["delay_max"] for d in delays]
                    ),
                    "delay_median": float(np.median(found)) if found.size else None,
                    "delay_p90": float(np.quantile(found, 0.9)) if found.size else None,
                    "delay_max": float(found.max()) if found.size else None,
                    "false_alarms_per_1000_checks": round(
                        1000 * false_alarms / max(pre_checks, 1), 1
                    ),
                    "streams_with_false_alarm_before_shift": rate(alarmed),
                }
            )
    return {
        "n_reference": n_ref,
        "window": window,
        "stride": stride,
        "fraction": fraction,
        "streams": streams,
        "episodes_before_shift": pre,
        "episodes_after_shift": post,
        "cost": cost(seconds),
        "results": combos,
    }


def relabel(checks: Sequence[WindowCheck], alpha: float, patience: int) -> list[WindowCheck]:
    """The alarms a monitor at ``alpha`` with ``patience`` would have raised on the same checks."""
    out, streak = [], 0
    for check in checks:
        drift = check.result.p_value is not None and check.result.p_value < alpha
        streak = streak + 1 if drift else 0
        out.append(WindowCheck(check.end, check.result, streak >= patience))
    return out


# ----------------------------------------------------------------------- detectors


def mmd(permutations: int, alpha: float = ALPHA) -> Detector:
    return lambda ref, cur: mmd_test(ref, cur, alpha=alpha, permutations=permutations)


def c2st(alpha: float = ALPHA) -> Detector:
    return lambda ref, cur: classifier_test(ref, cur, alpha=alpha)


def ks(alpha: float = ALPHA) -> Detector:
    return lambda ref, cur: ks_test(ref, cur, alpha=alpha)


def psi(threshold: float) -> Detector:
    return lambda ref, cur: psi_test(ref, cur, threshold=threshold)


# --------------------------------------------------------------------------- text


def text_section(data: dict[str, Any], quick: bool) -> dict[str, Any]:
    pairs, power_pairs = (200, 60) if quick else (500, 200)
    pools: dict[str, TextPools] = data["pools"]
    grid = [
        (100, 25, 200),
        (200, 25, 200),
        (200, 50, 100),
        (200, 50, 200),
        (200, 50, 500),
        (200, 100, 200),
        (500, 100, 200),
        (500, 200, 200),
    ]
    if quick:
        grid = [(200, 50, 200)]
    out: dict[str, Any] = {
        "scenarios": {k: v.description for k, v in pools.items()},
        "mmd": [],
        "c2st": [],
    }
    for n_ref, window, permutations in grid:
        row = pair_study(
            mmd(permutations),
            pools["lexicon"],
            n_ref,
            window,
            pairs=pairs,
            power_pairs=power_pairs,
            seed=SEED + n_ref + window + permutations,
        )
        row.update(scenario="lexicon", permutations=permutations)
        out["mmd"].append(row)
        print(
            "mmd",
            n_ref,
            window,
            permutations,
            row["fpr"]["rate"],
            row["power"][str(TARGET_FRACTION)]["rate"],
            row["cost"],
            flush=True,
        )
    for n_ref, window in [(200, 50)] if quick else [(200, 50), (200, 100)]:
        row = pair_study(
            c2st(),
            pools["lexicon"],
            n_ref,
            window,
            pairs=pairs,
            power_pairs=power_pairs,
            seed=SEED + 7 + window,
            fractions=(0.25, 0.5, 1.0),
        )
        row.update(scenario="lexicon")
        out["c2st"].append(row)
        print("c2st", n_ref, window, row["fpr"]["rate"], row["cost"], flush=True)
    chosen = choose(out["mmd"])
    out["chosen_mmd"] = {k: chosen[k] for k in ("n_reference", "window", "permutations")}
    row = pair_study(
        mmd(chosen["permutations"]),
        pools["glosses"],
        chosen["n_reference"],
        chosen["window"],
        pairs=pairs,
        power_pairs=power_pairs,
        seed=SEED + 99,
    )
    row.update(scenario="glosses", permutations=chosen["permutations"])
    out["mmd"].append(row)
    streams = 20 if quick else 60
    out["streams"] = []
    larger = [
        r for r in out["mmd"] if r["scenario"] == "lexicon" and r["window"] > chosen["window"]
    ]
    settings = [(chosen, TARGET_FRACTION, 5, streams), (chosen, 0.25, 5, streams)]
    if not quick:
        settings.append((chosen, TARGET_FRACTION, 1, streams // 2))
        if larger:
            bigger = min(larger, key=lambda r: (r["window"], r["cost"]["median_ms"]))
            settings.append((bigger, TARGET_FRACTION, 5, streams))
    for config, fraction, stride, count in settings:
        study = stream_study(
            mmd(config["permutations"]),
            pools["lexicon"],
            config["n_reference"],
            config["window"],
            stride=stride,
            fraction=fraction,
            streams=count,
            post=300,
            seed=SEED + 500,
        )
        study.update(detector="mmd", permutations=config["permutations"])
        out["streams"].append(study)
        print("stream", config["window"], fraction, stride, study["results"][0], flush=True)
    return out


def monitor_section(data: dict[str, Any], quick: bool) -> dict[str, Any]:
    """The live monitor as ``emily.drift.settings.DriftSettings`` configures it by default."""
    from emily.drift.settings import DriftSettings

    config = DriftSettings()
    pools: TextPools = data["pools"]["lexicon"]
    studies = []
    for fraction in (TARGET_FRACTION, 0.25):
        study = stream_study(
            mmd(config.mmd_permutations, alpha=config.monitor_alpha),
            pools,
            config.reference_size,
            config.window,
            stride=config.stride,
            fraction=fraction,
            streams=20 if quick else 100,
            post=300,
            seed=SEED + 700,
            alphas=(config.monitor_alpha,),
            patiences=(config.patience,),
        )
        study.update(detector="mmd", permutations=config.mmd_permutations)
        studies.append(study)
        print("monitor", fraction, study["results"][0], flush=True)
    return {"settings": config.model_dump(), "streams": studies}


def choose(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The smallest (then cheapest) lexicon window meeting power (at the target fraction) and
    cost, with a measured FPR consistent with the target (its 95 % interval reaches it: the
    permutation test's level is alpha by construction, so a point estimate sits above it about
    half the time)."""
    ok = [
        r
        for r in rows
        if r["scenario"] == "lexicon"
        and r["fpr"]["ci95"][0] <= TARGETS["fpr_max"]
        and r["power"][str(TARGET_FRACTION)]["rate"] >= TARGETS["power_min"]
        and r["cost"]["median_ms"] < TARGETS["cost_ms_max"]
    ]
    pool = ok or [r for r in rows if r["scenario"] == "lexicon"]
    return min(pool, key=lambda r: (r["window"], r["cost"]["median_ms"]))


def prediction_section(data: dict[str, Any], quick: bool) -> dict[str, Any]:
    """Prediction drift of a stand-in appraisal model (ridge on the embeddings, trained on the
    training words): KS / PSI on its predicted valence, prose vs shifted windows."""
    from sklearn.linear_model import Ridge

    vectors, valence, words, others = (
        data["vectors"],
        data["valence"],
        data["words"],
        data["others"],
    )
    split = data["split"]
    model = Ridge(alpha=1.0).fit(vectors[words[split["train"]]], valence[words[split["train"]]] / 4)
    scored = {
        "reference": model.predict(vectors[words[split["reference"]]]),
        "prose": model.predict(vectors[words[split["prose"]]]),
        "shifted": model.predict(vectors[others]),
    }
    quality = {
        name: round(float(stats.pearsonr(model.predict(vectors[idx]), valence[idx] / 4)[0]), 3)
        for name, idx in (("prose", words[split["prose"]]), ("non_alphabetic", others))
    }
    pools = TextPools(scored["reference"], scored["prose"], scored["shifted"], "ridge predictions")
    pairs, power_pairs = (200, 60) if quick else (400, 200)
    rows = []
    for label, detector in (("ks", ks()), ("psi>=0.25", psi(0.25)), ("psi>=0.1", psi(0.1))):
        for window in (50, 100, 200):
            row = pair_study(
                detector,
                pools,
                500,
                window,
                pairs=pairs,
                power_pairs=power_pairs,
                seed=SEED + 31 + window,
            )
            row["detector"] = label
            rows.append(row)
    streams = []
    for window in (100, 200):
        study = stream_study(
            ks(),
            pools,
            500,
            window,
            stride=5,
            fraction=TARGET_FRACTION,
            streams=20 if quick else 60,
            post=300,
            seed=SEED + 600,
        )
        study["detector"] = "ks"
        streams.append(study)
        print("prediction stream", window, study["results"][0], flush=True)
    return {
        "streams": streams,
        "model": "ridge(alpha=1) on MiniLM embeddings of 30 % of the words",
        "pearson_r": quality,
        "rows": rows,
    }


# ------------------------------------------------------------------------- census


def census_section(frame: pd.DataFrame, quick: bool) -> dict[str, Any]:
    base = frame[frame.year == 2015]
    rng = np.random.default_rng(SEED + 2015)
    order = rng.permutation(len(base))
    ref_pool, null_pool = base.iloc[order[: len(base) // 2]], base.iloc[order[len(base) // 2 :]]
    columns = census_columns(frame)
    pairs = 100 if quick else 300
    rows = []
    for window in (1000,) if quick else (500, 1000, 2000, 5000):
        n_ref = 5000
        for year in (None, 2016, 2017, 2018):
            pool = null_pool if year is None else frame[frame.year == year]
            report_flags, raw_any, seconds = [], [], []
            per_feature: dict[str, list[bool]] = {c: [] for c in CENSUS_FEATURES}
            psi_flags: dict[str, list[bool]] = {"psi>=0.1": [], "psi>=0.25": []}
            pred = {"ks": [], "chi2": [], "psi>=0.1": []}
            for i in range(pairs):
                r = np.random.default_rng([SEED, window, year or 0, i])
                reference = ref_pool.iloc[r.choice(len(ref_pool), n_ref, replace=False)]
                current = pool.iloc[r.choice(len(pool), window, replace=False)]
                started = time.perf_counter()
                report = feature_report(reference, current, columns=list(CENSUS_FEATURES))
                seconds.append(time.perf_counter() - started)
                report_flags.append(report.drift)
                raw_any.append(any((x.p_value or 1.0) < ALPHA for x in report.results))
                for x in report.results:
                    per_feature[x.feature].append((x.p_value or 1.0) < ALPHA)
                age = psi_test(reference["AGEP"], current["AGEP"], threshold=0.1)
                psi_flags["psi>=0.1"].append(age.statistic >= 0.1)
                psi_flags["psi>=0.25"].append(age.statistic >= 0.25)
                pp = (reference["predicted_probability"], current["predicted_probability"])
                pred["ks"].append(prediction_drift(*pp).drift)
                pred["psi>=0.1"].append(prediction_drift(*pp, numeric_test="psi").statistic >= 0.1)
                labels = (reference["prediction"].astype(str), current["prediction"].astype(str))
                pred["chi2"].append(prediction_drift(*labels, kind="categorical").drift)
            rows.append(
                {
                    "window": window,
                    "n_reference": n_ref,
                    "current": "2015 (no drift)" if year is None else str(year),
                    "report_holm": rate(report_flags),
                    "any_feature_uncorrected": rate(raw_any),
                    "per_feature_uncorrected": {c: rate(v)["rate"] for c, v in per_feature.items()},
                    "agep_psi": {k: rate(v)["rate"] for k, v in psi_flags.items()},
                    "prediction_drift": {k: rate(v)["rate"] for k, v in pred.items()},
                    "cost_report_16_features": cost(seconds),
                }
            )
            print(
                "census",
                window,
                year,
                rows[-1]["report_holm"]["rate"],
                rows[-1]["cost_report_16_features"],
                flush=True,
            )
    null_rows = [r for r in rows if r["current"].startswith("2015")]
    pooled = {
        "ks (AGEP)": [r["per_feature_uncorrected"]["AGEP"] for r in null_rows],
        "chi2 (15 categorical)": [
            float(
                np.mean([r["per_feature_uncorrected"][c] for c in CENSUS_FEATURES if c != "AGEP"])
            )
            for r in null_rows
        ],
    }
    return {
        "columns_by_year": columns,
        "pairs": pairs,
        "rows": rows,
        "per_test_fpr_by_window": pooled,
    }


def census_columns(frame: pd.DataFrame) -> dict[str, Any]:
    """Which columns drift: every year's full sample against the whole of 2015."""
    base = frame[frame.year == 2015]
    out: dict[str, Any] = {}
    for column in (*CENSUS_FEATURES, "employed", "prediction", "predicted_probability"):
        out[column] = {}
        for year in (2016, 2017, 2018):
            current = frame[frame.year == year][column]
            if column in ("AGEP", "predicted_probability"):
                result = ks_test(base[column], current)
                effect = {"ks": round(result.statistic, 4)}
            else:
                from emily.drift.categorical import chi_square_test

                result = chi_square_test(base[column].astype(str), current.astype(str))
                p = base[column].astype(str).value_counts(normalize=True)
                q = current.astype(str).value_counts(normalize=True)
                total_variation = 0.5 * float(p.subtract(q, fill_value=0).abs().sum())
                effect = {"total_variation": round(total_variation, 4)}
            if column in ("AGEP", "predicted_probability"):
                effect["psi"] = round(psi_test(base[column], current).statistic, 5)
            out[column][str(year)] = {**effect, "p_value": float(f"{result.p_value:.3g}")}
    return out


# ----------------------------------------------------------------------- Evidently


def evidently_section(
    data: dict[str, Any] | None, frame: pd.DataFrame, quick: bool
) -> dict[str, Any]:
    """Evidently 0.7.23 beside ours on the same windows (same seeds): FPR, power, cost."""
    import evidently
    from evidently.legacy.calculations.stattests import chi_stat_test, ks_stat_test, psi_stat_test
    from evidently.legacy.core import ColumnType

    warnings.filterwarnings("ignore")
    pairs = 60 if quick else 200
    out: dict[str, Any] = {"version": evidently.__version__, "pairs": pairs}
    base = frame[frame.year == 2015]
    order = np.random.default_rng(SEED + 2015).permutation(len(base))
    ref_pool, null_pool = base.iloc[order[: len(base) // 2]], base.iloc[order[len(base) // 2 :]]
    drift_pool = frame[frame.year == 2018]
    numeric, categorical = ColumnType.Numerical, ColumnType.Categorical
    checks: dict[str, Callable[[pd.Series, pd.Series], bool]] = {
        "ours ks AGEP": lambda r, c: ks_test(r, c).drift,
        "evidently ks AGEP": lambda r, c: bool(ks_stat_test(r, c, numeric, 0.05).drifted),
        "ours psi>=0.1 AGEP": lambda r, c: psi_test(r, c, threshold=0.1).drift,
        "evidently psi>=0.1 AGEP": lambda r, c: bool(psi_stat_test(r, c, numeric, 0.1).drifted),
    }
    for column in ("ANC", "SCHL", "RELP"):
        checks[f"ours chi2 {column}"] = lambda r, c: _chi(r, c)
        checks[f"evidently chisquare {column}"] = lambda r, c: bool(
            chi_stat_test(r.astype(str), c.astype(str), categorical, 0.05).drifted
        )
    tabular = []
    for n_ref, window in ((1000, 1000), (5000, 1000)):
        for name, check in checks.items():
            column = name.split()[-1]
            flags: dict[str, list[bool]] = {"null": [], "2018": []}
            seconds = []
            for label, pool in (("null", null_pool), ("2018", drift_pool)):
                for i in range(pairs):
                    r = np.random.default_rng([SEED, 77, n_ref, window, i, label == "null"])
                    reference = ref_pool[column].iloc[r.choice(len(ref_pool), n_ref, replace=False)]
                    current = pool[column].iloc[r.choice(len(pool), window, replace=False)]
                    started = time.perf_counter()
                    try:
                        flags[label].append(bool(check(reference, current)))
                    except Exception as exc:  # Evidently's chisquare refuses unseen categories
                        flags[label].append(False)
                        out.setdefault("errors", {}).setdefault(
                            name, type(exc).__name__ + ": " + str(exc)[:120]
                        )
                    seconds.append(time.perf_counter() - started)
            tabular.append(
                {
                    "check": name,
                    "n_reference": n_ref,
                    "window": window,
                    "fpr": rate(flags["null"]),
                    "power_2018": rate(flags["2018"]),
                    "cost": cost(seconds),
                }
            )
            print(
                "evidently",
                tabular[-1]["check"],
                n_ref,
                tabular[-1]["fpr"]["rate"],
                tabular[-1]["power_2018"]["rate"],
                flush=True,
            )
    out["tabular"] = tabular
    out["report_path"] = report_costs(ref_pool, null_pool, drift_pool, quick)
    if data is not None:
        out["embedding"] = embedding_comparison(data, pairs)
    return out


def _chi(reference: pd.Series, current: pd.Series) -> bool:
    from emily.drift.categorical import chi_square_test

    return chi_square_test(reference.astype(str), current.astype(str)).drift


def report_costs(
    ref_pool: pd.DataFrame, null_pool: pd.DataFrame, drift_pool: pd.DataFrame, quick: bool
) -> dict[str, Any]:
    """What a user of Evidently's Report API pays per check, and the preset's dataset decision
    (drift when at least half of the columns drift, no multiplicity correction) beside ours."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=["AGEP"], categorical_columns=[c for c in CENSUS_FEATURES if c != "AGEP"]
    )
    runs = 20 if quick else 60
    flags: dict[str, list[bool]] = {
        "preset null": [],
        "preset 2018": [],
        "ours null": [],
        "ours 2018": [],
    }
    seconds: dict[str, list[float]] = {
        "valuedrift_ks_report": [],
        "preset_16_columns": [],
        "ours_report_16_columns": [],
    }
    for i in range(runs):
        for label, pool in (("null", null_pool), ("2018", drift_pool)):
            r = np.random.default_rng([SEED, 88, i, label == "null"])
            reference = ref_pool.iloc[r.choice(len(ref_pool), 1000, replace=False)][
                list(CENSUS_FEATURES)
            ]
            current = pool.iloc[r.choice(len(pool), 1000, replace=False)][list(CENSUS_FEATURES)]
            started = time.perf_counter()
            ref_ds = Dataset.from_pandas(reference, data_definition=definition)
            cur_ds = Dataset.from_pandas(current, data_definition=definition)
            Report([ValueDrift(column="AGEP", method="ks")]).run(
                current_data=cur_ds, reference_data=ref_ds
            )
            seconds["valuedrift_ks_report"].append(time.perf_counter() - started)
            started = time.perf_counter()
            ref_ds = Dataset.from_pandas(reference, data_definition=definition)
            cur_ds = Dataset.from_pandas(current, data_definition=definition)
            snapshot = Report([DataDriftPreset()]).run(current_data=cur_ds, reference_data=ref_ds)
            seconds["preset_16_columns"].append(time.perf_counter() - started)
            share = snapshot.dict()["metrics"][0]["value"]["share"]
            flags[f"preset {label}"].append(share >= 0.5)
            started = time.perf_counter()
            flags[f"ours {label}"].append(feature_report(reference, current).drift)
            seconds["ours_report_16_columns"].append(time.perf_counter() - started)
    return {
        "window": 1000,
        "n_reference": 1000,
        "runs": runs,
        "decisions": {k: rate(v) for k, v in flags.items()},
        "cost": {k: cost(v) for k, v in seconds.items()},
    }


def embedding_comparison(data: dict[str, Any], pairs: int) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift
    from evidently.metrics.embeddings import MMDDriftMethod, ModelDriftMethod

    pools: TextPools = data["pools"]["lexicon"]
    columns = [f"e{i}" for i in range(pools.reference.shape[1])]

    def frame(x: Array) -> pd.DataFrame:
        return pd.DataFrame(x.astype(np.float32), columns=columns)

    methods: dict[str, Detector] = {
        "ours mmd (B=200)": mmd(200),
        "ours c2st (holdout)": c2st(),
    }
    for label, method in (
        ("evidently mmd default (threshold 0.015)", MMDDriftMethod()),
        ("evidently mmd bootstrap", MMDDriftMethod(bootstrap=True)),
        ("evidently model default (AUC > 0.55)", ModelDriftMethod()),
        ("evidently model bootstrap", ModelDriftMethod(bootstrap=True)),
    ):
        methods[label] = _evidently_embedding(method, frame)
    rows = []
    n_ref, window = 200, 50
    for name, detector in methods.items():
        count = pairs if "bootstrap" not in name else max(pairs // 2, 50)
        row = pair_study(
            detector,
            pools,
            n_ref,
            window,
            pairs=count,
            power_pairs=count // 2,
            seed=SEED + 4242,
            fractions=(0.25, 0.5),
        )
        row["detector"] = name
        rows.append(row)
        print("evidently emb", name, row["fpr"]["rate"], row["power"], row["cost"], flush=True)
    definition = DataDefinition(embeddings={"emb": columns})
    rng = np.random.default_rng(SEED)
    reference, current = (
        frame(draw(pools.reference, n_ref, rng)),
        frame(draw(pools.prose, window, rng)),
    )
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        Report([EmbeddingsDrift(embeddings_name="emb", drift_method=MMDDriftMethod())]).run(
            current_data=Dataset.from_pandas(current, data_definition=definition),
            reference_data=Dataset.from_pandas(reference, data_definition=definition),
        )
        seconds.append(time.perf_counter() - started)
    return {"n_reference": n_ref, "window": window, "rows": rows, "report_path_mmd": cost(seconds)}


def _evidently_embedding(method: Any, frame: Callable[[Array], pd.DataFrame]) -> Detector:
    def detect(reference: Array, current: Array) -> DriftResult:
        score, drifted, _ = method(frame(current), frame(reference))
        return DriftResult(
            test="mmd",
            feature="evidently",
            statistic=float(score),
            drift=bool(drifted),
            n_reference=len(reference),
            n_current=len(current),
        )

    return detect


# --------------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Calibrate emily.drift on real data.")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "emily" / "drift-calibration"
    )
    parser.add_argument(
        "--census-dir", type=Path, default=None, help="default: fetch-census-data.py"
    )
    parser.add_argument("--quick", action="store_true", help="fewer pairs (a smoke run)")
    parser.add_argument(
        "--evidently", action="store_true", help="only the Evidently comparison, merged into --out"
    )
    parser.add_argument(
        "--only", choices=("text", "prediction", "monitor", "census"), action="append"
    )
    args = parser.parse_args()
    frame = census(census_dir(args.census_dir))
    started = time.perf_counter()
    existing = json.loads(args.out.read_text("utf-8")) if args.out.is_file() else {}
    if args.evidently:
        try:
            data: dict[str, Any] | None = text_data(args.cache)
        except Exception as exc:  # the embedder is not installed in the scratch venv
            print(f"embeddings unavailable ({exc}); text comparison skipped", file=sys.stderr)
            data = None
        existing["evidently"] = evidently_section(data, frame, args.quick)
        existing["evidently"]["machine"] = machine()
    else:
        sections = set(args.only or ("text", "prediction", "monitor", "census"))
        existing.update(
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
            command="cd python && .venv/bin/python ../scripts/drift-calibration.py"
            + (" --quick" if args.quick else ""),
            seed=SEED,
            alpha=ALPHA,
            targets=TARGETS,
            target_fraction=TARGET_FRACTION,
            machine=machine(),
        )
        data = text_data(args.cache) if sections & {"text", "prediction", "monitor"} else None
        if "text" in sections and data is not None:
            existing["text"] = text_section(data, args.quick)
            write(args.out, existing)
        if "prediction" in sections and data is not None:
            existing["prediction"] = prediction_section(data, args.quick)
            write(args.out, existing)
        if "monitor" in sections and data is not None:
            existing["monitor"] = monitor_section(data, args.quick)
            write(args.out, existing)
        if "census" in sections:
            existing["census"] = census_section(frame, args.quick)
        existing["wall_s"] = round(time.perf_counter() - started, 1)
    write(args.out, existing)
    print(args.out)


def write(path: Path, data: dict[str, Any]) -> None:
    """Atomically, after each section, so a failure late in a long run keeps what was measured."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


if __name__ == "__main__":
    main()
