"""``params.yaml``, validated: a typo or an out-of-range value fails the stage naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emily.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrepareParams(_Section):
    test_fraction: float = Field(gt=0, lt=0.5)
    seed: int
    extra_dir: str = Field(description="Extra human-labelled JSONL files (DVC-tracked).")
    max_rows: int | None = Field(
        default=None, ge=100, description="Stratified subsample of the lexicon (None: all)."
    )
    lexicon_kinds: list[Literal["word", "other"]] = Field(
        default=["word", "other"],
        min_length=1,
        description="The lexicon's kinds the dataset starts from (extra data enters whole).",
    )


class ValidateParams(_Section):
    min_rows: int = Field(ge=1)
    max_rows: int = Field(ge=1)
    std_tolerance: float = Field(gt=0)
    mean_tolerance: float = Field(gt=0)
    known_inconsistencies: dict[str, str] = Field(
        description="token → why its published mean/std disagree with its ratings"
    )


class EmbedParams(_Section):
    batch_size: int = Field(ge=1, le=4096)


class DriftParams(_Section):
    alpha: float = Field(gt=0, lt=0.5)
    sample: int = Field(ge=20)
    permutations: int = Field(ge=50)
    seed: int


class TrainParams(_Section):
    kinds: list[Literal["word", "other"]] = Field(min_length=1)
    gammas: list[float] = Field(min_length=1)
    alphas: list[float] = Field(min_length=1)
    folds: int = Field(ge=2, le=10)
    cv_rows: int = Field(ge=100, description="Training rows used for the CV grid search.")
    seed: int


class EvaluateParams(_Section):
    min_r: float = Field(ge=-1, le=1)
    bootstrap: int = Field(ge=100)
    seed: int


class Params(_Section):
    prepare: PrepareParams
    validate_: ValidateParams = Field(alias="validate")
    embed: EmbedParams
    drift: DriftParams
    train: TrainParams
    evaluate: EvaluateParams


def load_params(path: Path) -> Params:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", field="params.yaml") from exc
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(first["msg"], field=f"params.yaml:{where}") from None
