"""Small process and socket helpers shared by the local services."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from emily.errors import BinaryNotFoundError, PortInUseError, StackError

SERVICE_USER = "emily"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def choose_port(
    configured: int,
    remembered: int | None,
    service: str,
    warn: Callable[[str], None] | None = None,
) -> int:
    """The configured port (must be free), else the port used last time if still free, else
    any free one. Moving away from the remembered port is reported through ``warn``: every
    consumer finds the new port through the state file, but a human may have noted the old."""
    if configured:
        if port_in_use(configured):
            raise PortInUseError(
                f"{service}: port {configured} on 127.0.0.1 is already in use by another process",
                hint="stop that process or choose another port (0 picks a free one)",
            )
        return configured
    if remembered and not port_in_use(remembered):
        return remembered
    port = free_port()
    if remembered and warn is not None:
        warn(f"port {remembered} (used last time) is taken by another process; now on {port}")
    return port


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); read its state so a dead child counts as dead.
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields and fields[0] == "Z":
            return False
    return True


def terminate(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL."""
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_until(lambda: not pid_alive(pid), timeout_s):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 5.0)


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def require_binary(name: str, configured: Path | None = None, package_hint: str = "") -> Path:
    """Absolute path of an executable, or a ``BinaryNotFoundError`` saying how to install it."""
    if configured is not None:
        if configured.is_file() and os.access(configured, os.X_OK):
            return configured
        raise BinaryNotFoundError(f"{name} not found at configured path {configured}")
    found = shutil.which(name)
    if found is None:
        raise BinaryNotFoundError(f"{name} is not installed or not on PATH", hint=package_hint)
    return Path(found)


def running_as_root() -> bool:
    return os.geteuid() == 0


def service_user() -> pwd.struct_passwd:
    """PostgreSQL refuses to run as root: as root we run it as a dedicated system user."""
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    try:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise StackError(
            f"cannot create system user '{SERVICE_USER}' for PostgreSQL: {exc}"
        ) from exc
    return pwd.getpwnam(SERVICE_USER)


def grant_traverse(path: Path, user: pwd.struct_passwd) -> None:
    """Let ``user`` (only it) reach ``path``: a POSIX ACL entry ``u:<user>:x`` on each parent
    directory it cannot search yet. Unlike ``o+x`` this opens nothing to other local users."""
    setfacl = require_binary("setfacl", package_hint="apt-get install acl")
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        try:
            info = parent.stat()
        except FileNotFoundError:
            continue
        if _can_search(info, user):
            continue
        try:
            subprocess.run(
                [str(setfacl), "-m", f"u:{user.pw_name}:x", str(parent)],
                check=True,
                capture_output=True,
                text=True,
            )
        except subprocess.CalledProcessError as exc:
            raise StackError(
                f"cannot let the service user '{user.pw_name}' reach {parent}: "
                f"{exc.stderr.strip()}",
                hint="the state directory's file system needs POSIX ACLs",
            ) from exc


def _can_search(info: os.stat_result, user: pwd.struct_passwd) -> bool:
    mode = info.st_mode
    if info.st_uid == user.pw_uid:
        return bool(mode & stat.S_IXUSR)
    if mode & stat.S_IXOTH:
        return True
    # Group bits are also the ACL mask: with ACL entries present they cap them.
    return bool(info.st_gid == user.pw_gid and mode & stat.S_IXGRP)


def chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(Path(root) / name, user.pw_uid, user.pw_gid)
    os.chown(path, user.pw_uid, user.pw_gid)


def terminate_group(pid: int, timeout_s: float = 20.0) -> None:
    """Stop a server started in a session of its own (``start_new_session``) and everything it
    spawned (workers, threads' helpers): SIGTERM to the group, wait, then SIGKILL."""
    leader = False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        leader = pid_alive(pid) and os.getpgid(pid) == pid
    if leader:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    terminate(pid, timeout_s)
    if leader:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def private_log(path: Path) -> BinaryIO:
    """Open a server's log for appending, created 0600 (logs may quote what users sent)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "ab")
