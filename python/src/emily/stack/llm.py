"""llama.cpp's OpenAI-compatible ``llama-server`` on the shipped GGUF model, under the state
directory: listens on 127.0.0.1 only, logs to ``<state_dir>/llm/llama-server.log``, ready when
``/health`` answers 200 (the model is loaded)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from emily.config import Settings
from emily.errors import StackError
from emily.inference.local import find_model, find_server_bin
from emily.stack.process import choose_port, pid_alive, terminate, wait_until
from emily.stack.service import ServiceStatus
from emily.stack.state import ServiceRecord, StateDir


def _healthy(port: int) -> bool:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _is_llama_server(pid: int) -> bool:
    """Alive and still our server (a recorded pid may have been reused after a reboot)."""
    if not pid_alive(pid):
        return False
    try:
        return b"llama-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class LocalLlamaServer:
    name = "llm"

    def __init__(self, settings: Settings, state: StateDir) -> None:
        self.settings = settings
        self.state = state
        self.home = state.service_dir("llm")
        self.logfile = self.home / "llama-server.log"

    def command(self, port: int) -> list[str]:
        server = self.settings.inference.server
        return [
            str(find_server_bin(self.settings)),
            "--model",
            str(find_model(self.settings)),
            "--alias",
            server.model_alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            str(server.threads),
            "--ctx-size",
            str(server.ctx_size),
            "--parallel",
            str(server.parallel),
            "--n-gpu-layers",
            server.gpu_layers,
            "--metrics",
            "--no-webui",
            "--log-file",
            str(self.logfile),
            *server.extra_args,
        ]

    def start(self, previous: ServiceRecord | None) -> ServiceRecord:
        # Resolve binary and model before anything else: a clear error, and no stray process.
        find_server_bin(self.settings)
        find_model(self.settings)
        timeout = self.settings.inference.server.start_timeout_s
        if previous is not None and previous.pid is not None and _is_llama_server(previous.pid):
            port_before = previous.port
            # A live server may still be loading its model: give it the readiness wait, and
            # only replace it (never leave it orphaned) when it does not become healthy.
            if port_before and wait_until(lambda: _healthy(port_before), timeout, 0.1):
                return previous
            terminate(previous.pid)
        port = choose_port(
            self.settings.inference.server.port, previous.port if previous else None, "llm"
        )
        command = self.command(port)
        self.logfile.unlink(missing_ok=True)  # one run per file; the last start is what matters
        with (self.home / "llama-server.out").open("wb") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_until(lambda: process.poll() is not None or _healthy(port), timeout, 0.1):
            terminate(process.pid)
            raise StackError(
                f"llama-server did not become ready within {timeout:g}s",
                hint=f"see {self.logfile}",
            )
        if process.poll() is not None:
            tail = (self.home / "llama-server.out").read_text(errors="replace").strip()[-500:]
            raise StackError(
                f"llama-server exited with code {process.returncode}: {tail}",
                hint=f"see {self.logfile}",
            )
        return ServiceRecord(
            name=self.name,
            pid=process.pid,
            port=port,
            url=f"http://127.0.0.1:{port}/v1",
            details={
                "model": command[command.index("--model") + 1],
                "alias": self.settings.inference.server.model_alias,
                "binary": command[0],
                "log": str(self.logfile),
            },
        )

    def stop(self, record: ServiceRecord) -> None:
        if record.pid is not None:
            terminate(record.pid)

    def probe(self, record: ServiceRecord) -> ServiceStatus:
        running = pid_alive(record.pid)
        healthy = running and record.port is not None and _healthy(record.port)
        return ServiceStatus(
            name=self.name,
            running=running,
            healthy=healthy,
            pid=record.pid if running else None,
            url=record.url,
            detail=str(record.details.get("model", self.home)),
        )
