"""The local stack: real servers (PostgreSQL + pgvector, Redis, ...) under one state directory."""
