"""MLOps: MLflow tracking, registry, evaluation and tracing."""
