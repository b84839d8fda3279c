"""Health probes of the local servers on the standard library only: ``emily status`` runs them
all and must start in about a second, which an HTTP or Redis client library's import alone
would take."""

from __future__ import annotations

import http.client
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit


def http_healthy(url: str, timeout_s: float = 2.0) -> bool:
    """``GET <url>/health`` answers 200."""
    parts = urlsplit(url)
    if parts.hostname is None:
        return False
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    try:
        conn.request("GET", parts.path.rstrip("/") + "/health")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _command(*words: str) -> bytes:
    encoded = [w.encode("utf-8") for w in words]
    parts = [f"*{len(encoded)}\r\n".encode()]
    for word in encoded:
        parts.append(f"${len(word)}\r\n".encode() + word + b"\r\n")
    return b"".join(parts)


def redis_pings(host: str, port: int, password: str | None, timeout_s: float = 1.0) -> bool:
    """``AUTH`` (when a password is given) then ``PING`` answers ``+PONG`` (RESP over a socket)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            request = (_command("AUTH", password) if password else b"") + _command("PING")
            conn.sendall(request)
            expected = (b"+OK\r\n" if password else b"") + b"+PONG\r\n"
            received = b""
            while len(received) < len(expected):
                chunk = conn.recv(len(expected) - len(received))
                if not chunk:
                    return False
                received += chunk
            return received == expected
    except OSError:
        return False


def pg_isready(executable: Path, host: str, port: int, timeout_s: int = 2) -> bool:
    """PostgreSQL's own readiness probe (libpq's ``PQping``: the server accepts connections; no
    login, so no password and no psycopg import)."""
    try:
        result = subprocess.run(
            [str(executable), "-q", "-h", host, "-p", str(port), "-t", str(timeout_s)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s + 1,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0
