"""Episodic memory on PostgreSQL + pgvector."""
