"""A Redis server (Debian's ``redis-server``) under the state directory, AOF-persistent and
password-protected, listening on 127.0.0.1 only."""

from __future__ import annotations

import subprocess
from urllib.parse import quote

import redis as redis_lib

from emily.config import Settings
from emily.errors import StackError
from emily.stack.process import choose_port, pid_alive, require_binary, terminate, wait_until
from emily.stack.service import ServiceStatus
from emily.stack.state import ServiceRecord, StateDir

PASSWORD_SECRET = "redis-password"  # noqa: S105 - a file name, not a password


class LocalRedis:
    name = "redis"

    def __init__(self, settings: Settings, state: StateDir) -> None:
        self.settings = settings
        self.state = state
        self.home = state.service_dir("redis")

    def _url(self, port: int) -> str:
        return f"redis://:{quote(self.state.secret(PASSWORD_SECRET))}@127.0.0.1:{port}/0"

    def _ping(self, port: int) -> bool:
        try:
            client = redis_lib.Redis.from_url(self._url(port), socket_timeout=1)
            return bool(client.ping())
        except redis_lib.RedisError:
            return False

    def start(self, previous: ServiceRecord | None) -> ServiceRecord:
        binary = require_binary(
            "redis-server", self.settings.stack.redis_bin, "apt-get install redis-server"
        )
        if (
            previous is not None
            and previous.port
            and pid_alive(previous.pid)
            and self._ping(previous.port)
        ):
            return previous
        port = choose_port(
            self.settings.stack.redis_port, previous.port if previous else None, "redis"
        )
        conf = self.home / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {port}",
                    f"dir {self.home}",
                    "daemonize no",
                    "appendonly yes",
                    "appendfsync everysec",
                    'save ""',
                    f"requirepass {self.state.secret(PASSWORD_SECRET)}",
                    f"logfile {self.home / 'redis.log'}",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        conf.chmod(0o600)
        process = subprocess.Popen(
            [str(binary), str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if not wait_until(lambda: self._ping(port) or process.poll() is not None, 20):
            terminate(process.pid)
            raise StackError("redis-server did not answer within 20 s", hint=str(self.home))
        if process.poll() is not None:
            raise StackError(
                f"redis-server exited with code {process.returncode}",
                hint=f"see {self.home / 'redis.log'}",
            )
        return ServiceRecord(
            name=self.name,
            pid=process.pid,
            port=port,
            url=f"redis://127.0.0.1:{port}/0",
            details={"url": self._url(port), "dir": str(self.home)},
        )

    def stop(self, record: ServiceRecord) -> None:
        if record.pid is not None:
            terminate(record.pid)

    def probe(self, record: ServiceRecord) -> ServiceStatus:
        running = pid_alive(record.pid)
        healthy = running and record.port is not None and self._ping(record.port)
        return ServiceStatus(
            name=self.name,
            running=running,
            healthy=healthy,
            pid=record.pid if running else None,
            url=record.url,
            detail=str(self.home),
        )
