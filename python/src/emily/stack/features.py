"""The Feast feature server (``feast serve``) as a local service, and the Feast configuration every
process of ours shares.

Configuration (``feature_store.yaml``, built by :func:`feast_config`):

* registry: Feast's SQL registry on our PostgreSQL, in the features schema, ``cache_mode: thread``
  (refreshed in a background thread, never on a request's path). It survives restarts and is
  shared by every process (CLI, server, UI), which a file registry is not;
* online store: our Redis, its own database index (``features.redis_db``), Sentinel or Cluster by
  settings; ``key_ttl_seconds`` expires entity hashes nobody writes any more;
* offline store: our PostgreSQL, read as the least-privilege role ``emily_features``.

The YAML holds no secret: the registry URL, the Redis connection string and the database password
are ``${...}`` placeholders that Feast expands from the server's environment (set here, readable
only by our user), so neither the file nor ``ps`` shows a password.

Auth (``features.auth``): ``local`` runs the server with ``auth: oidc`` against a token issuer of
our own: the launcher process (``python -m emily.stack.feast_launcher``) serves the OIDC discovery
document and the JWKS of an RSA key kept in the state directory's secrets, and starts ``feast
serve`` as its child. Clients (the agent, the CLI) sign short-lived tokens with that key
(``emily.features.tokens``). Feast then enforces the ``Permission`` objects of the repository on
every read, push and materialization: a real OIDC check, offline. ``oidc`` points the server at
an external IdP; ``none`` is Feast's ``no_auth`` (no enforcement at all).

Serving flags: ``--max-requests 0`` (worker recycling reloads the registry and stalls requests for
seconds), ``--no-access-log``, ``-r`` = the registry TTL, loopback only.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from emily.errors import BinaryNotFoundError, ConfigError
from emily.locator import FEATURES, postgres_admin_dsn, redis_url
from emily.stack.health import http_healthy
from emily.stack.process import choose_port, pid_alive, terminate_group
from emily.stack.service import LocalService
from emily.statefile import PRIVATE_FILE, ServiceRecord, StateDir, private_dir, write_private

if TYPE_CHECKING:
    from emily.config import Settings

DB_PASSWORD_SECRET = "features-db-password"  # noqa: S105 - a file name, not a password
OIDC_KEY_SECRET = "features-oidc-key.pem"  # noqa: S105
OIDC_KEY_ID = "emily-local-1"
# Environment variables the YAML refers to (Feast expands ``${VAR}`` when it reads the file).
ENV_REGISTRY = "EMILY_FEAST_REGISTRY_URL"
ENV_REDIS = "EMILY_FEAST_REDIS"
ENV_PG_PASSWORD = "EMILY_FEAST_PG_PASSWORD"  # noqa: S105 - a variable name


def feast_executable() -> Path:
    """The ``feast`` console script of the environment we run in."""
    candidate = Path(sys.executable).parent / "feast"
    if not candidate.is_file():
        raise BinaryNotFoundError(
            f"feast not found next to {sys.executable}", hint="run `make setup` (uv sync)"
        )
    return candidate


# -- connections -------------------------------------------------------------------------------


def features_dsn(settings: Settings) -> str:
    """The DSN of the feature role: configured, else the local stack's server with the role's
    generated password (the role itself is created by ``emily.features.database``)."""
    config = settings.features
    if config.offline_dsn is not None:
        return config.offline_dsn.get_secret_value()
    if settings.database.dsn is not None:
        raise ConfigError(
            "the feature store needs its own role's DSN when the database is external",
            field="EMILY_FEATURES__OFFLINE_DSN",
            hint=f"create role {config.db_role} (owner of schema {config.db_schema}) and set it",
        )
    from psycopg.conninfo import make_conninfo  # psycopg is 0.15 s: not on `emily status`'s path

    password = StateDir(settings.state_dir).secret(DB_PASSWORD_SECRET)
    return make_conninfo(postgres_admin_dsn(settings), user=config.db_role, password=password)


def _dsn_parts(dsn: str) -> dict[str, Any]:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    return {
        "host": str(params.get("host") or "127.0.0.1"),
        "port": int(params.get("port") or 5432),
        "database": str(params.get("dbname") or "emily"),
        "user": str(params.get("user") or ""),
        "password": str(params.get("password") or ""),
        "sslmode": str(params.get("sslmode") or "prefer"),
        "sslrootcert": params.get("sslrootcert"),
    }


def registry_url(settings: Settings) -> str:
    """SQLAlchemy URL (psycopg 3) of the SQL registry."""
    if settings.features.registry_path is not None:
        return settings.features.registry_path.get_secret_value()
    parts = _dsn_parts(features_dsn(settings))
    auth = quote(parts["user"], safe="")
    if parts["password"]:
        auth += ":" + quote(parts["password"], safe="")
    url = f"postgresql+psycopg://{auth}@{parts['host']}:{parts['port']}/"
    url += quote(parts["database"], safe="")
    if parts["sslmode"] not in ("prefer", "disable", "allow"):
        url += f"?sslmode={quote(parts['sslmode'])}"
    return url


def redis_connection(settings: Settings) -> str:
    """Feast's Redis connection string (``host:port,password=...,db=N``).

    Feast splits it on ``,`` and JSON-decodes every value, so a password with a comma is cut
    short and a digit-only one becomes a number: both are refused here with an explanation."""
    config = settings.features
    if config.redis_connection is not None:
        return config.redis_connection.get_secret_value()
    parts = urlsplit(redis_url(settings))
    password = unquote(parts.password or "")
    if "," in password or password.isdigit() or password.lower() in ("true", "false", "null"):
        raise ConfigError(
            "this Redis password cannot be passed to Feast (a ',' ends it; digits or true/false "
            "change its type)",
            field="EMILY_FEATURES__REDIS_CONNECTION",
            hint="use a URL-safe password or set the connection string explicitly",
        )
    items = [f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"]
    if parts.username:
        items.append(f"username={unquote(parts.username)}")
    if password:
        items.append(f"password={password}")
    if config.redis_type != "redis_cluster":
        items.append(f"db={config.redis_db}")
    if parts.scheme == "rediss":
        items.append("ssl=true")
    return ",".join(items)


# -- configuration -----------------------------------------------------------------------------


def feast_config(
    settings: Settings, *, secrets_inline: bool = True, auth: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The Feast repository configuration (``RepoConfig(**it)`` or ``feature_store.yaml``).

    ``secrets_inline=False`` writes ``${VAR}`` placeholders instead of secrets (see
    :func:`feast_environment`); ``auth`` is the server's auth block (default ``no_auth``: only
    Feast servers enforce permissions, never the in-process SDK)."""
    config = settings.features
    pg = _dsn_parts(features_dsn(settings))
    online: dict[str, Any] = {
        "type": "redis",
        "redis_type": config.redis_type,
        "connection_string": redis_connection(settings) if secrets_inline else f"${{{ENV_REDIS}}}",
    }
    if config.redis_type == "redis_sentinel":
        online["sentinel_master"] = config.sentinel_master
    if config.key_ttl_s:
        online["key_ttl_seconds"] = config.key_ttl_s
    offline: dict[str, Any] = {
        "type": "postgres",
        "host": pg["host"],
        "port": pg["port"],
        "database": pg["database"],
        "db_schema": config.db_schema,
        "user": pg["user"],
        "password": pg["password"] if secrets_inline else f"${{{ENV_PG_PASSWORD}}}",
        # Feast's default is "require", which fails against a local server without TLS.
        "sslmode": "disable" if pg["sslmode"] == "prefer" else pg["sslmode"],
        "conn_type": "pool",
        "min_conn": 1,
        "max_conn": 4,
    }
    if pg["sslrootcert"]:
        offline["sslrootcert_path"] = str(pg["sslrootcert"])
    return {
        "project": config.project,
        "provider": "local",
        "registry": {
            "registry_type": "sql",
            "path": registry_url(settings) if secrets_inline else f"${{{ENV_REGISTRY}}}",
            "cache_mode": "thread",
            "cache_ttl_seconds": config.registry_cache_ttl_s,
            "sqlalchemy_config_kwargs": {
                "echo": False,
                "pool_pre_ping": True,
                # The registry's tables live in the features schema, not in public.
                "connect_args": {"options": f"-c search_path={config.db_schema}"},
            },
        },
        "online_store": online,
        "offline_store": offline,
        # Materialization reads only the newest row per entity (2x faster than a range scan).
        "materialization": {"pull_latest_features": True},
        "entity_key_serialization_version": 3,
        "auth": auth or {"type": "no_auth"},
    }


def feast_environment(settings: Settings) -> dict[str, str]:
    """The secrets the placeholders of :func:`feast_config` stand for."""
    return {
        ENV_REGISTRY: registry_url(settings),
        ENV_REDIS: redis_connection(settings),
        ENV_PG_PASSWORD: _dsn_parts(features_dsn(settings))["password"],
        "FEAST_USAGE": "False",  # no usage telemetry
    }


def write_yaml(path: Path, config: dict[str, Any]) -> Path:
    """``feature_store.yaml`` (JSON is YAML; no secrets in it when written with placeholders)."""
    write_private(path, json.dumps(config, indent=2) + "\n")
    return path


def server_auth(settings: Settings, issuer_url: str | None) -> dict[str, Any]:
    """The feature server's auth block for ``features.auth``."""
    config = settings.features
    if config.auth == "none":
        return {"type": "no_auth"}
    if config.auth == "local":
        assert issuer_url is not None
        return {
            "type": "oidc",
            "auth_discovery_url": f"{issuer_url}/.well-known/openid-configuration",
            "client_id": config.oidc_client_id,
            "audience": config.oidc_client_id,
            "issuer": issuer_url,
            "verify_ssl": False,  # loopback http: nothing to verify
            "jwks_cache_lifespan_seconds": 300,
            "jwks_request_timeout_seconds": 5,
        }
    block: dict[str, Any] = {
        "type": "oidc",
        "auth_discovery_url": config.oidc_discovery_url,
        "client_id": config.oidc_client_id,
        "verify_ssl": config.oidc_verify_ssl,
        "jwks_cache_lifespan_seconds": 300,
        "jwks_request_timeout_seconds": 5,
    }
    if config.oidc_audience:
        block["audience"] = config.oidc_audience
    if config.oidc_issuer:
        block["issuer"] = config.oidc_issuer
    if config.oidc_ca_cert:
        block["ca_cert_path"] = str(config.oidc_ca_cert)
    return block


# -- the local token issuer --------------------------------------------------------------------


def oidc_key_path(state: StateDir) -> Path:
    return state.secrets_dir / OIDC_KEY_SECRET


def ensure_oidc_key(state: StateDir) -> Path:
    """The issuer's RSA signing key (PEM, 0600), created once."""
    path = oidc_key_path(state)
    if path.is_file():
        return path
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    state.ensure()
    private_dir(state.secrets_dir)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return path


def serve_arguments(settings: Settings, config_file: Path, host: str, port: int) -> list[str]:
    """``feast -f <config> serve ...`` arguments (after ``feast``): the serving flags of the module
    docstring, the same for the local stack and the NixOS unit (``emily features serve``)."""
    config = settings.features
    return [
        "-f",
        str(config_file),
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(config.workers),
        "--max-requests",
        str(config.max_requests),
        "--keep-alive-timeout",
        str(config.keep_alive_s),
        "--registry_ttl_sec",
        str(config.registry_cache_ttl_s),
        "--no-access-log",
    ]


# Feast's server-to-server shortcut accepts *unsigned* tokens naming this value: never set.
INTRA_SECRET = "INTRA_COMMUNICATION_BASE64"  # noqa: S105 - a variable name


def serve_environment(settings: Settings) -> dict[str, str]:
    """What ``feast serve`` needs in its environment besides ours: the values the YAML's
    placeholders stand for and the cached-permissions switch (see ``feast_cli_main``)."""
    cached = "1" if settings.features.cached_permissions else "0"
    return {**feast_environment(settings), "EMILY_FEAST_CACHED_PERMISSIONS": cached}


# -- the service -------------------------------------------------------------------------------


class LocalFeatureServer(LocalService):
    name = FEATURES

    @property
    def config_file(self) -> Path:
        return self.home / "feature_store.yaml"

    @property
    def logfile(self) -> Path:
        return self.home / "feast-serve.log"

    def answers(self, record: ServiceRecord) -> bool:
        return record.url is not None and http_healthy(record.url)

    def stop(self, record: ServiceRecord) -> None:
        if record.pid is not None:
            terminate_group(record.pid)

    def _issuer_port(self, previous: ServiceRecord | None) -> int:
        remembered = previous.details.get("issuer_port") if previous else None
        return choose_port(0, int(remembered) if remembered else None, "features issuer")

    def start(self, previous: ServiceRecord | None) -> ServiceRecord:
        feast_executable()  # fail early and clearly when Feast is not installed
        previous = previous or self.recover()
        config = self.settings.features
        if previous is not None and previous.url and pid_alive(previous.pid):
            if http_healthy(previous.url):
                if config.port and config.port != previous.port:
                    self.warn(
                        f"already running on port {previous.port}; the configured port "
                        f"{config.port} takes effect after `emily down -s features && emily up`"
                    )
                return self.remember(previous)
            terminate_group(int(previous.pid or 0))  # alive but not answering: start afresh
        port = choose_port(config.port, previous.port if previous else None, "features", self.warn)
        url = f"http://127.0.0.1:{port}"
        launcher = [sys.executable, "-m", "emily.stack.feast_launcher"]
        issuer_url: str | None = None
        details: dict[str, Any] = {"auth": config.auth}
        if config.auth == "local":
            issuer_port = self._issuer_port(previous)
            issuer_url = f"http://127.0.0.1:{issuer_port}"
            key = ensure_oidc_key(self.state)
            launcher += ["--issuer-port", str(issuer_port), "--key", str(key)]
            details.update(issuer_url=issuer_url, issuer_port=issuer_port)
        write_yaml(
            self.config_file,
            feast_config(
                self.settings, secrets_inline=False, auth=server_auth(self.settings, issuer_url)
            ),
        )
        serve = [
            sys.executable,
            "-c",
            "import sys, emily.stack.feast_launcher as m; sys.exit(m.feast_cli_main())",
            *serve_arguments(self.settings, self.config_file, "127.0.0.1", port),
        ]
        env = {**os.environ, **serve_environment(self.settings)}
        env.pop(INTRA_SECRET, None)
        # The launcher and everything it starts (issuer thread, feast serve, gunicorn's
        # workers) share one session: stopping its group stops them all.
        process = self.spawn_until_healthy(
            [*launcher, "--", *serve],
            env,
            url,
            config.start_timeout_s,
            what="feast serve",
            hint="`emily up` applies the feature repository first",
        )
        details.update(
            project=config.project,
            config=str(self.config_file),
            log=str(self.logfile),
            redis_db=config.redis_db,
        )
        return self.remember(
            ServiceRecord(name=self.name, pid=process.pid, port=port, url=url, details=details)
        )
