"""A Redis server (Debian's ``redis-server``) under the state directory, AOF-persistent and
password-protected, listening on 127.0.0.1 only. Its files (AOF with stimulus texts, config
with the password, log) are created under umask 077 in a 0700 directory."""

from __future__ import annotations

import subprocess
from urllib.parse import quote

from emily.errors import StackError
from emily.stack.health import redis_pings
from emily.stack.process import choose_port, pid_alive, require_binary, terminate, wait_until
from emily.stack.service import LocalService
from emily.statefile import ServiceRecord, write_private

PASSWORD_SECRET = "redis-password"  # noqa: S105 - a file name, not a password


class LocalRedis(LocalService):
    name = "redis"

    def _url(self, port: int) -> str:
        return f"redis://:{quote(self.state.secret(PASSWORD_SECRET))}@127.0.0.1:{port}/0"

    def _ping(self, port: int) -> bool:
        return redis_pings("127.0.0.1", port, self.state.secret(PASSWORD_SECRET))

    def answers(self, record: ServiceRecord) -> bool:
        return record.port is not None and self._ping(record.port)

    def _record(self, pid: int, port: int) -> ServiceRecord:
        return ServiceRecord(
            name=self.name,
            pid=pid,
            port=port,
            url=f"redis://127.0.0.1:{port}/0",
            details={"url": self._url(port), "dir": str(self.home)},
        )

    def start(self, previous: ServiceRecord | None) -> ServiceRecord:
        binary = require_binary(
            "redis-server", self.settings.stack.redis_bin, "apt-get install redis-server"
        )
        previous = previous or self.recover()
        configured = self.settings.stack.redis_port
        if (
            previous is not None
            and previous.port
            and pid_alive(previous.pid)
            and self._ping(previous.port)
        ):
            if configured and configured != previous.port:
                self.warn(
                    f"already running on port {previous.port}; the configured port "
                    f"{configured} takes effect after `emily down -s redis && emily up -s redis`"
                )
            return self.remember(previous)
        port = choose_port(configured, previous.port if previous else None, "redis", self.warn)
        conf = self.home / "redis.conf"
        write_private(
            conf,
            "\n".join(
                [
                    "bind 127.0.0.1",
                    "protected-mode yes",
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
        )
        process = subprocess.Popen(
            [str(binary), str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,
        )
        if not wait_until(lambda: self._ping(port) or process.poll() is not None, 20):
            terminate(process.pid)
            raise StackError("redis-server did not answer within 20 s", hint=str(self.home))
        if process.poll() is not None:
            raise StackError(
                f"redis-server exited with code {process.returncode}",
                hint=f"see {self.home / 'redis.log'}",
            )
        return self.remember(self._record(process.pid, port))
