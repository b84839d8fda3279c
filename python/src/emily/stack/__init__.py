"""The local stack: real servers (PostgreSQL + pgvector, Redis, ...) under one state directory."""

from emily.stack.endpoints import Endpoints, resolve_endpoints
from emily.stack.manager import Stack

__all__ = ["Endpoints", "Stack", "resolve_endpoints"]
