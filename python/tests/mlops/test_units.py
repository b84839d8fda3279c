"""The pieces of the lifecycle that need no server: lexicon parsing, validation checks, the
model's persistence and errors, and the statistics behind promotion (checked against known
answers on simulated data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emily.mlops.appraisal.baselines import pearson, ridge_cv, split_half_reliability
from emily.mlops.appraisal.lexicon import (
    LexiconError,
    installed_lexicon,
    kind_of,
    parse_line,
    read_lexicon,
)
from emily.mlops.appraisal.model import KernelRidgeAppraiser, ModelError
from emily.mlops.pipeline import dataset
from emily.mlops.pipeline.params import ValidateParams
from emily.mlops.pipeline.validation import DataValidationError, check, raise_if_failed
from emily.mlops.promotion import paired_bootstrap

PARAMS = ValidateParams(
    min_rows=1, max_rows=100, std_tolerance=0.005, mean_tolerance=0.051, known_inconsistencies={}
)


def test_the_installed_lexicon_parses_and_has_human_ratings() -> None:
    rows = read_lexicon(installed_lexicon())
    assert len(rows) == 7520
    assert all(len(r.ratings) == 10 for r in rows)
    good = next(r for r in rows if r.token == "good")
    assert good.kind == "word" and good.valence > 0.3
    assert kind_of(":-)") == "other" and kind_of("don't") == "word" and kind_of("B)") == "other"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("good\t1.9\t0.9", "line"),
        ("good\tpositive\t0.9\t[1, 2]", "published_mean"),
        ("good\t1.9\twide\t[1, 2]", "published_std"),
        ("good\t1.9\t0.9\t[1, 'two']", "ratings"),
        ("good\t1.9\t0.9\tnot a list", "ratings"),
        ("good\t1.9\t0.9\t[1, true]", "ratings"),
    ],
)
def test_a_malformed_lexicon_line_names_row_and_column(line: str, field: str) -> None:
    with pytest.raises(LexiconError) as caught:
        parse_line(line, 42)
    assert caught.value.row == 42 and caught.value.field == field


def test_a_malformed_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.txt"
    path.write_text("good\t1.9\t0.9\t[2, 2, 2, 2, 2, 2, 2, 2, 1, 2]\nbad line\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="row 2"):
        read_lexicon(path)


def _frame(**override: object) -> pd.DataFrame:
    record = {
        "token": "good",
        "kind": "word",
        "source": "vader",
        "line": 7,
        "published_mean": 1.9,
        "published_std": 0.3,
        "ratings": [2, 2, 2, 2, 2, 2, 2, 2, 2, 1],
        "valence": 1.9 / 4,
        "split": "train",
    }
    record.update(override)
    return pd.DataFrame([record])


@pytest.mark.parametrize(
    ("override", "check_name", "column"),
    [
        ({"ratings": [2] * 9}, "ranges", "ratings"),
        ({"ratings": [9] * 10, "published_mean": 9.0}, "ranges", "ratings"),
        ({"published_mean": 2.5}, "consistency", "published_mean"),
        ({"published_std": 0.9}, "consistency", "published_std"),
        ({"kind": "emoji"}, "types", "kind"),
        ({"valence": float("nan")}, "nulls", "valence"),
        ({"split": "dev"}, "types", "split"),
        ({"token": ""}, "types", "token"),
    ],
)
def test_each_validation_check_fails_with_row_and_column(
    override: dict[str, object], check_name: str, column: str
) -> None:
    report = check(_frame(**override), PARAMS)
    assert not report["passed"]
    first = next(v for v in report["violations"] if v["check"] == check_name)
    assert first["row"] == 7 and first["column"] == column
    with pytest.raises(DataValidationError) as caught:
        raise_if_failed(report)
    assert caught.value.row == 7


def test_valid_data_passes_and_known_inconsistencies_are_explicit() -> None:
    assert check(_frame(), PARAMS)["passed"]
    odd = _frame(token="repetitive", published_std=0.06325)
    assert not check(odd, PARAMS)["passed"]
    allowed = PARAMS.model_copy(update={"known_inconsistencies": {"repetitive": "typo"}})
    assert check(odd, allowed)["passed"]


def test_duplicates_and_row_bounds() -> None:
    twice = pd.concat([_frame(), _frame(line=8)], ignore_index=True)
    report = check(twice, PARAMS)
    assert report["violations_by_check"]["duplicates"] == 1
    tight = PARAMS.model_copy(update={"min_rows": 5})
    assert check(_frame(), tight)["violations_by_check"]["row_count"] == 1


def test_a_corrupted_parquet_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(dataset.DatasetError, match="cannot read"):
        dataset.read(path)
    frame = _frame()
    frame.to_parquet(path, index=False)
    meta = tmp_path / "meta.json"
    meta.write_text('{"content_sha256": "0000"}', encoding="utf-8")
    with pytest.raises(dataset.DatasetError, match="content hash"):
        dataset.read(path, meta)


def _unit(rng: np.random.Generator, n: int, dim: int = 8) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_kernel_ridge_learns_saves_and_loads(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = _unit(rng, 400)
    y = np.tanh(2 * x[:, 0] - x[:, 1] ** 2)
    model = KernelRidgeAppraiser.fit(x[:300], y[:300], gamma=1.0, alpha=0.05)
    r = pearson(model.predict(x[300:]), y[300:])
    weights, intercept, _ = ridge_cv(x[:300], y[:300])
    assert r > 0.9 and r > pearson(x[300:] @ weights + intercept, y[300:])
    loaded = KernelRidgeAppraiser.load(model.save(tmp_path / "m"))
    assert np.allclose(loaded.predict(x[300:]), model.predict(x[300:]))
    assert (tmp_path / "m" / "appraisal.json").is_file()


def test_model_errors_are_typed(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    model = KernelRidgeAppraiser.fit(_unit(rng, 20), rng.uniform(-1, 1, 20), gamma=1, alpha=1)
    with pytest.raises(ModelError, match="dimensions"):
        model.predict(_unit(rng, 2, dim=5))
    with pytest.raises(ModelError, match="NaN"):
        model.predict(np.full((1, 8), np.nan))
    with pytest.raises(ModelError, match="positive"):
        KernelRidgeAppraiser.fit(_unit(rng, 5), np.zeros(5), gamma=0, alpha=1)
    with pytest.raises(ModelError, match="cannot load"):
        KernelRidgeAppraiser.load(tmp_path)


def test_paired_bootstrap_sees_a_known_effect_and_no_effect() -> None:
    rng = np.random.default_rng(3)
    truth = rng.standard_normal(600)
    weak = truth + rng.standard_normal(600) * 1.5  # r ≈ 0.55
    strong = truth + rng.standard_normal(600) * 0.5  # r ≈ 0.89
    effect, low, high, p = paired_bootstrap(weak, strong, truth, samples=500, alpha=0.05)
    assert 0.25 < effect < 0.45 and low > 0 and p < 0.01 and low < effect < high
    effect, low, high, p = paired_bootstrap(strong, strong, truth, samples=500, alpha=0.05)
    assert effect == 0 and low == 0 == high and p == 1.0
    noisy = strong + rng.standard_normal(600) * 0.01
    _, low, high, p = paired_bootstrap(strong, noisy, truth, samples=500, alpha=0.05)
    assert low < 0 < high and p > 0.05


def test_split_half_reliability_is_high_for_agreeing_raters() -> None:
    rng = np.random.default_rng(5)
    latent = rng.uniform(-3, 3, 300)
    agreeing = np.clip(np.round(latent[:, None] + rng.normal(0, 0.7, (300, 10))), -4, 4)
    random_raters = rng.integers(-4, 5, (300, 10)).astype(float)
    assert split_half_reliability(agreeing) > 0.95
    assert abs(split_half_reliability(random_raters)) < 0.2


def test_new_data_leaves_every_earlier_row_in_its_sample_and_split(tmp_path: Path) -> None:
    """A row's split is a draw from its own token: adding labelled turns never moves an
    earlier row into the test split (where the champion, trained on it, would look better)."""
    import json

    lexicon = installed_lexicon()
    extra = tmp_path / "extra"
    extra.mkdir()
    kwargs = {"test_fraction": 0.3, "seed": 7, "max_rows": 600, "lexicon_kinds": ("word",)}
    before = dataset.build(lexicon, extra, **kwargs)
    assert set(before["kind"]) == {"word"} and len(before) == 600
    assert 0.2 < (before["split"] == "test").mean() < 0.4
    rows = [{"text": t, "ratings": [2] * 10} for t in (":-)", "<3", "lol")]
    (extra / "watch-x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    after = dataset.build(lexicon, extra, **kwargs)
    old = after[after["source"] == "vader"].set_index("token")["split"]
    assert old.to_dict() == before.set_index("token")["split"].to_dict()
    assert set(after.loc[after["source"] == "extra", "token"]) == {":-)", "<3", "lol"}
