"""Episodic memory on PostgreSQL + pgvector."""

from emily.memory.errors import InvalidEpisodeError, MemoryStoreError, SchemaMismatchError
from emily.memory.models import Affect, Episode, SearchResult
from emily.memory.store import MemoryStore

__all__ = [
    "Affect",
    "Episode",
    "InvalidEpisodeError",
    "MemoryStore",
    "MemoryStoreError",
    "SchemaMismatchError",
    "SearchResult",
]
