"""Why a turn failed, and what of it was stored (the API reports both)."""

from __future__ import annotations

from emily.errors import EmilyError


class TurnFailedError(EmilyError):
    """A turn did not complete: it is not recorded in the thread. ``episode_id`` is the episode
    it stored before failing, if any (normally ``None``: the turn is rolled back)."""

    def __init__(
        self, message: str, *, episode_id: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.episode_id = episode_id


class EpisodeNotStoredError(TurnFailedError):
    """The turn needed its episode in episodic memory (the API's turns do) and could not
    store it; nothing of the turn was stored."""
