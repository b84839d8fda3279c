"""The in-process Feast ``FeatureStore`` (SDK) on our stores. Importing Feast costs seconds, so
only commands that need the SDK (apply, materialize, backfill, training sets, the benchmark)
open one; the agent uses the feature server."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from emily.stack.features import feast_config

if TYPE_CHECKING:
    from feast import FeatureStore

    from emily.config import Settings


def quiet_feast() -> None:
    """Feast's PostgreSQL code leaks connections on some paths (a ResourceWarning each) and
    warns about its own experimental features; neither is ours to act on."""
    warnings.filterwarnings("ignore", category=ResourceWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"feast\..*")
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"feast\..*")
    warnings.filterwarnings("ignore", message=r".*[Ee]xperimental.*")
    import logging

    logging.getLogger("feast").setLevel(logging.WARNING)


def repo_config(settings: Settings) -> Any:
    from feast import RepoConfig

    return RepoConfig(**feast_config(settings))


def open_store(settings: Settings) -> FeatureStore:
    quiet_feast()
    from feast import FeatureStore

    return FeatureStore(config=repo_config(settings))
