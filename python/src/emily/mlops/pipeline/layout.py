"""Where the pipeline's files are, relative to the pipeline directory (``pipeline/``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emily.errors import ConfigError

# python/src/emily/mlops/pipeline/layout.py → the repository root is five levels up.
_CHECKOUT = Path(__file__).resolve().parents[5]


def default_pipeline_dir() -> Path:
    return _CHECKOUT / "pipeline"


@dataclass(frozen=True)
class Layout:
    root: Path

    @classmethod
    def here(cls) -> Layout:
        """The pipeline directory a DVC stage runs in (its working directory)."""
        return cls(Path.cwd())

    @classmethod
    def of(cls, configured: Path | None) -> Layout:
        root = configured or default_pipeline_dir()
        if not (root / "dvc.yaml").is_file():
            raise ConfigError(
                f"no DVC pipeline at {root} (dvc.yaml missing)", field="EMILY_MLOPS__PIPELINE_DIR"
            )
        return cls(root)

    @property
    def repo_root(self) -> Path:
        """The DVC (and git) repository holding the pipeline directory."""
        for candidate in [self.root, *self.root.parents]:
            if (candidate / ".dvc").is_dir():
                return candidate
        raise ConfigError(f"{self.root} is not inside a DVC repository (no .dvc directory)")

    def relative(self, path: Path) -> str:
        """``path`` relative to the repository root (what ``dvc.api`` wants)."""
        return str(path.resolve().relative_to(self.repo_root.resolve()))

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def lexicon(self) -> Path:
        return self.root / "data" / "lexicon.parquet"

    @property
    def lexicon_meta(self) -> Path:
        return self.root / "data" / "lexicon.meta.json"

    @property
    def extra(self) -> Path:
        return self.root / "data" / "extra"

    @property
    def embeddings(self) -> Path:
        return self.root / "data" / "embeddings.npy"

    @property
    def model_dir(self) -> Path:
        return self.root / "models" / "appraisal"

    @property
    def run_file(self) -> Path:
        return self.root / "models" / "run.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def plots(self) -> Path:
        return self.root / "plots"
