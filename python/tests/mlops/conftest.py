"""The lifecycle tests' fixtures live in ``tests/fixtures/pipeline.py`` (session-wide, so the
trainings can start early)."""
