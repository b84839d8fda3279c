"""``emily features ui``: Feast's web UI (the registry browser; its build ships in the wheel, so it
works offline) on 127.0.0.1, from the same registry the server uses. It shows definitions only,
never feature values; it has no auth of its own, which is why it listens on loopback."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from typing import TYPE_CHECKING

from emily.errors import BinaryNotFoundError
from emily.stack.features import feast_config, feast_environment, feast_executable, write_yaml
from emily.statefile import private_dir

if TYPE_CHECKING:
    from emily.config import Settings


def ui_command(settings: Settings, port: int) -> tuple[list[str], dict[str, str]]:
    """The ``feast ui`` command line and its environment (secrets only in the environment)."""
    # Feast's UI mounts its registry REST API, which imports the gRPC registry server.
    missing = [m for m in ("grpc", "grpc_health", "grpc_reflection") if not _importable(m)]
    if missing:
        raise BinaryNotFoundError(
            f"feast ui needs gRPC ({', '.join(missing)} not installed)",
            hint="install Feast's grpcio extra: feast[redis,postgres,grpcio]",
        )
    home = private_dir(settings.state_dir / "features" / "ui")
    config = write_yaml(home / "feature_store.yaml", feast_config(settings, secrets_inline=False))
    env = dict(os.environ)
    env.update(feast_environment(settings))
    command = [
        str(feast_executable()),
        "-f",
        str(config),
        "ui",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return command, env


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def serve_ui(settings: Settings, port: int) -> int:
    """Run the UI in the foreground; returns its exit code (0 after Ctrl-C)."""
    command, env = ui_command(settings, port)
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(20)
        return 0
