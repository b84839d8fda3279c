"""Feature store (Feast, Redis online store)."""
