"""The registered champion appraiser in the loop.

``perceive`` asks it for the stimulus's valence. The model (``models:/<name>@champion``) is
loaded in a background thread, never in a turn: importing MLflow and loading the model take
seconds. The thread re-reads the alias every ``mlops.appraisal_refresh_s`` and swaps in the
new version when the alias has moved (a version already loaded is cached by URI). Until a
model is loaded, or when it cannot be, the appraiser answers with the anchor method
(``emily.mlops.appraisal.anchors``) and says why, so the turn is marked degraded with the
reason. Each answer names what produced it (``emily-appraisal/3`` or ``anchor``), which the
loop records in its state, its trace and the episode's context.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from emily.agents.follower import Follower
from emily.agents.nodes import short
from emily.agents.perception import Appraisal
from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from emily.config import Settings
    from emily.mlops.appraisal.anchors import AnchorAxis, Embed

log = get_logger("agents.champion")
ANCHOR = "anchor"


class ChampionAppraiser(Follower):
    """Valence from the version an alias names (the champion by default; the challenger for an
    A/B test, see ``emily.agents.ab``); the anchor method when it is unavailable (degraded)."""

    def __init__(self, settings: Settings, embed: Embed | None, alias: str = "champion") -> None:
        super().__init__(settings.mlops.appraisal_refresh_s, f"{alias}-appraiser")
        self.alias = alias
        self._settings = settings
        self._embed = embed
        self._lock = threading.Lock()
        self._model: Any = None
        self._source: str | None = None
        self._error = "the champion is still loading"
        self._axis: AnchorAxis | None = None

    @property
    def source(self) -> str:
        """What answers now: ``<model>/<version>`` or ``anchor``."""
        with self._lock:
            return self._source or ANCHOR

    @property
    def error(self) -> str | None:
        with self._lock:
            return None if self._model is not None else self._error

    def refresh(self) -> bool:
        """Read the alias and load the version it names; ``False`` when that failed (the model
        loaded before, if any, stays in use: cached in process)."""
        mlops = self._settings.mlops
        from emily.mlops.lifecycle import AliasNotSetError, load_model

        try:
            model, info = load_model(self._settings, f"{mlops.model_name}@{self.alias}")
        except AliasNotSetError as exc:
            # The registry answered: no version holds the alias (a challenger dropped or
            # promoted). Stop answering with the version it named before.
            with self._lock:
                unloaded, self._model, self._source = self._source, None, None
                self._error = f"{self.alias} unavailable ({short(exc)})"
            if unloaded is not None:
                log.info("appraiser_unloaded", alias=self.alias, was=unloaded)
            return False
        except Exception as exc:
            with self._lock:
                self._error = f"{self.alias} unavailable ({short(exc)})"
                kept = self._model is not None
            log.warning(
                "appraiser_unavailable", alias=self.alias, error=short(exc), kept_loaded=kept
            )
            return False
        source = f"{mlops.model_name}/{info.version}"
        with self._lock:
            moved = source != self._source
            self._model, self._source = model, source
        if moved:
            log.info(
                "appraiser_loaded", alias=self.alias, model=mlops.model_name, version=info.version
            )
        return True

    @property
    def loaded(self) -> str | None:
        """The version loaded now (``<model>/<version>``), ``None`` before the first load."""
        with self._lock:
            return self._source if self._model is not None else None

    def appraise_many(
        self, texts: Sequence[str], embeddings: np.ndarray[Any, Any]
    ) -> tuple[np.ndarray[Any, Any], str]:
        """Valence of many texts at once and the version that produced it; ``RuntimeError``
        when no champion is loaded (batch labelling has no fallback: it says so instead)."""
        with self._lock:
            model, source, error = self._model, self._source, self._error
        if model is None or source is None:
            raise RuntimeError(error)
        return np.asarray(model.appraise(list(texts), embeddings), dtype=np.float64), source

    def _anchor_axis(self) -> AnchorAxis:
        if self._axis is None:
            from emily.mlops.appraisal.anchors import AnchorAxis

            if self._embed is None:
                raise RuntimeError("no embedder for the anchor method")
            self._axis = AnchorAxis.fit(self._embed, "valence")
        return self._axis

    def __call__(self, text: str, embedding: Sequence[float] | None) -> Appraisal:
        with self._lock:
            model, source, error = self._model, self._source, self._error
        vectors = None if embedding is None else np.asarray([embedding], dtype=np.float32)
        if model is not None and source is not None:
            valence = float(model.appraise([text], vectors)[0])
            return Appraisal({"valence": valence}, source)
        if vectors is None:
            # Without an embedding the anchor method cannot run: the word lists answer.
            return Appraisal({}, "words", degraded=f"{error}; no embedding for the anchor method")
        valence = float(self._anchor_axis().score(vectors)[0])
        return Appraisal({"valence": valence}, ANCHOR, degraded=f"{error}; anchor method used")
