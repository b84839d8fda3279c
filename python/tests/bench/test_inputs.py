"""Bad matrices and options: typed errors that name the file (and row) before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emily.config import Settings
from emily.errors import EmilyError
from emily.memory.bench.data import load_matrix
from emily.memory.bench.errors import BenchConfigError, BenchInputError
from emily.memory.bench.runner import run_benchmark


def _save(tmp_path: Path, name: str, array: np.ndarray) -> Path:
    path = tmp_path / name
    np.save(path, array)
    return path


def test_loads_float16_as_float32(tmp_path: Path) -> None:
    path = _save(tmp_path, "ok.npy", np.ones((3, 4), dtype=np.float16))
    matrix = load_matrix(path)
    assert matrix.dtype == np.float32 and matrix.shape == (3, 4)


def test_one_dimensional_array(tmp_path: Path) -> None:
    path = _save(tmp_path, "flat.npy", np.ones(8, dtype=np.float32))
    with pytest.raises(BenchInputError, match="2-D") as info:
        load_matrix(path)
    assert info.value.field == str(path)


def test_nan_names_file_and_row(tmp_path: Path) -> None:
    array = np.ones((5, 3), dtype=np.float32)
    array[3, 1] = np.nan
    path = _save(tmp_path, "nan.npy", array)
    with pytest.raises(BenchInputError, match="NaN") as info:
        load_matrix(path)
    assert (info.value.field, info.value.row) == (str(path), 3)


def test_infinite_value(tmp_path: Path) -> None:
    array = np.ones((2, 3), dtype=np.float16)
    array[0, 0] = np.inf
    with pytest.raises(BenchInputError) as info:
        load_matrix(_save(tmp_path, "inf.npy", array))
    assert info.value.row == 0


def test_not_an_npy_file(tmp_path: Path) -> None:
    path = tmp_path / "vectors.csv"
    path.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(BenchInputError, match=r"not a \.npy") as info:
        load_matrix(path)
    assert info.value.field == str(path)
    assert isinstance(info.value, EmilyError)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BenchInputError, match="not found"):
        load_matrix(tmp_path / "absent.npy")


def test_npz_archive(tmp_path: Path) -> None:
    path = tmp_path / "both.npz"
    np.savez(path, a=np.ones((2, 2)))
    with pytest.raises(BenchInputError, match="archive"):
        load_matrix(path)


def test_strings_and_empty(tmp_path: Path) -> None:
    with pytest.raises(BenchInputError, match="float16 or float32"):
        load_matrix(_save(tmp_path, "s.npy", np.array([["a", "b"]])))
    with pytest.raises(BenchInputError, match="empty"):
        load_matrix(_save(tmp_path, "e.npy", np.ones((0, 4), dtype=np.float32)))


def test_dimension_mismatch_names_queries(settings: Settings) -> None:
    with pytest.raises(BenchInputError, match="dimension 5") as info:
        run_benchmark(
            settings,
            np.ones((20, 4), dtype=np.float32),
            np.ones((3, 5), dtype=np.float32),
            metric="l2",
            names=("b.npy", "q.npy"),
        )
    assert info.value.field == "q.npy"


def test_k_larger_than_base(settings: Settings) -> None:
    with pytest.raises(BenchInputError, match="fewer than k=10") as info:
        run_benchmark(
            settings,
            np.ones((5, 4), dtype=np.float32),
            np.ones((3, 4), dtype=np.float32),
            metric="l2",
            names=("b.npy", "q.npy"),
        )
    assert info.value.field == "b.npy"
    with pytest.raises(BenchInputError, match="at least 1"):
        run_benchmark(settings, np.ones((5, 4)), np.ones((3, 4)), metric="l2", k=0)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"efs": (0,)}, "ef"),
        ({"efs": ()}, "ef"),
        ({"clients": (0,)}, "clients"),
        ({"m": 1}, "m"),
        ({"m": 16, "ef_construction": 20}, "ef_construction"),
        ({"rerank": 50}, "rerank"),
        ({"quantization": "binary", "rerank": 5}, "rerank"),
        ({"engines": ["milvus"]}, "engines"),
        ({"engines": []}, "engines"),
        ({"exact_queries": 0}, "exact_queries"),
    ],
)
def test_bad_options(settings: Settings, options: dict[str, object], field: str) -> None:
    with pytest.raises(BenchConfigError) as info:
        run_benchmark(
            settings,
            np.ones((20, 4), dtype=np.float32),
            np.ones((3, 4), dtype=np.float32),
            metric="cosine",
            **options,  # type: ignore[arg-type]
        )
    assert info.value.field == field
