"""Feature store on Feast: Redis online store, PostgreSQL offline store."""
