"""Which services make up the local stack, in start order."""

from __future__ import annotations

from emily.stack.features import LocalFeatureServer
from emily.stack.llm import LocalLlamaServer
from emily.stack.mlflow import LocalMlflow
from emily.stack.postgres import LocalPostgres
from emily.stack.redis import LocalRedis
from emily.stack.service import LocalService

# Order matters: later services may depend on earlier ones (MLflow stores runs in PostgreSQL).
SERVICES: dict[str, type[LocalService]] = {
    "postgres": LocalPostgres,
    "redis": LocalRedis,
    "llm": LocalLlamaServer,
    "mlflow": LocalMlflow,
    "features": LocalFeatureServer,
}
