"""Errors of the episodic memory."""

from __future__ import annotations

from emily.errors import EmilyError


class MemoryStoreError(EmilyError):
    """The memory store cannot do what was asked (schema missing, database unreachable, ...)."""


class InvalidEpisodeError(MemoryStoreError):
    """An episode (or a search argument) failed validation; nothing of its batch was written."""


class SchemaMismatchError(MemoryStoreError):
    """The database schema does not match the settings (e.g. another embedding dimension)."""
