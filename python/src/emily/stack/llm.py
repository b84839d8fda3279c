"""llama.cpp's OpenAI-compatible ``llama-server`` on the shipped GGUF model, under the state
directory: listens on 127.0.0.1 only, requires a generated API key (``--api-key-file``, so the
key never appears on a command line), logs to ``<state_dir>/llm/llama-server.log``, ready when
``/health`` answers 200 (the model is loaded)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from emily.errors import StackError
from emily.locator import LLM_API_KEY_SECRET
from emily.stack.health import http_healthy
from emily.stack.llama_binaries import find_model, find_server_bin
from emily.stack.process import choose_port, pid_alive, private_log, terminate, wait_until
from emily.stack.service import LocalService
from emily.statefile import ServiceRecord


def _healthy(port: int) -> bool:
    return http_healthy(f"http://127.0.0.1:{port}", 1.0)


def _is_llama_server(pid: int | None) -> bool:
    """Alive and still our server (a recorded pid may have been reused after a reboot)."""
    if not pid_alive(pid):
        return False
    try:
        return b"llama-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class LocalLlamaServer(LocalService):
    name = "llm"

    @property
    def logfile(self) -> Path:
        return self.home / "llama-server.log"

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
            "--api-key-file",
            str(self.state.secret_path(LLM_API_KEY_SECRET)),
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

    def pid_of(self, record: ServiceRecord) -> int | None:
        return record.pid if _is_llama_server(record.pid) else None

    def answers(self, record: ServiceRecord) -> bool:
        return record.port is not None and _healthy(record.port)

    def start(self, previous: ServiceRecord | None) -> ServiceRecord:
        # Resolve binary and model before anything else: a clear error, and no stray process.
        find_server_bin(self.settings)
        find_model(self.settings)
        timeout = self.settings.inference.server.start_timeout_s
        previous = previous or self.recover()
        configured = self.settings.inference.server.port
        if previous is not None and self.pid_of(previous) is not None:
            port_before = previous.port
            # A live server may still be loading its model: give it the readiness wait, and
            # only replace it (never leave it orphaned) when it does not become healthy.
            if port_before and wait_until(lambda: _healthy(port_before), timeout, 0.1):
                if configured and configured != port_before:
                    self.warn(
                        f"already running on port {port_before}; the configured port "
                        f"{configured} takes effect after `emily down -s llm && emily up -s llm`"
                    )
                return self.remember(previous)
            assert previous.pid is not None
            terminate(previous.pid)
        port = choose_port(configured, previous.port if previous else None, "llm", self.warn)
        command = self.command(port)
        self.logfile.unlink(missing_ok=True)  # one run per file; the last start is what matters
        (self.home / "llama-server.out").unlink(missing_ok=True)
        with private_log(self.home / "llama-server.out") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=0o077,
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
        return self.remember(
            ServiceRecord(
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
        )
