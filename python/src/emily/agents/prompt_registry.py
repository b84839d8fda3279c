"""The cognition prompt from MLflow's prompt registry, by alias (``mlops.prompt_alias``).

Cognition asks for its prompt once per turn, in the event loop, so the provider never touches
the network there: a background thread loads the version the alias names and re-reads it every
``mlops.appraisal_refresh_s``. Until the first load succeeds, or while the registry is down and
nothing was loaded, the built-in text answers (its version, ``builtin-1``, is what the trace
and the turn record then). ``emily up`` registers the built-in text as the first version.
"""

from __future__ import annotations

import threading

from emily.agents.cognition import DEFAULT_PROMPT, CognitionPrompt
from emily.agents.follower import Follower
from emily.agents.nodes import short
from emily.config import Settings
from emily.telemetry.logs import get_logger

log = get_logger("agents.prompt_registry")


class RegistryPrompt(Follower):
    """A ``PromptProvider`` backed by the prompt registry, with the built-in text as fallback."""

    def __init__(self, settings: Settings, alias: str | None = None) -> None:
        super().__init__(settings.mlops.appraisal_refresh_s, "prompt-registry")
        self._settings = settings
        self._alias = alias or settings.mlops.prompt_alias
        self._prompt = DEFAULT_PROMPT
        self._lock = threading.Lock()
        self.error: str | None = "not loaded yet"

    def __call__(self) -> CognitionPrompt:
        with self._lock:
            return self._prompt

    def refresh(self) -> bool:
        """Load the version the alias names; ``False`` (previous prompt kept) on failure."""
        try:
            from emily.mlops.prompts import load

            registered = load(self._settings, self._alias)
            prompt = CognitionPrompt(
                system=registered.system, user=registered.user, version=registered.uri
            )
            # A template with other fields would fail every turn: check it once here.
            prompt.messages("probe", [0.0, 0.0, 0.0], [])
        except Exception as exc:
            self.error = short(exc)
            log.warning("prompt_unavailable", alias=self._alias, error=self.error)
            return False
        with self._lock:
            moved = prompt.version != self._prompt.version
            self._prompt = prompt
        self.error = None
        if moved:
            log.info("prompt_loaded", version=prompt.version, alias=self._alias)
        return True
