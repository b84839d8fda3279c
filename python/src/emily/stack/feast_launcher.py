"""The feature server's launcher process (``python -m emily.stack.feast_launcher``): the local
OIDC token issuer in a thread and ``feast serve`` as its child (see :mod:`emily.stack.features`).

Kept out of :mod:`emily.stack.features` so that ``emily status`` and every other process that only
*describes* the service never import ``http.server`` and the launcher's machinery.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emily.stack.features import OIDC_KEY_ID

if TYPE_CHECKING:
    from emily.config import Settings


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def issuer_documents(key_pem: bytes, issuer_url: str) -> dict[str, dict[str, Any]]:
    """The discovery document and JWKS the local issuer serves (public key only)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    numbers = key.public_key().public_numbers()
    return {
        "/.well-known/openid-configuration": {
            "issuer": issuer_url,
            # Feast checks that these exist; tokens are minted locally, never by a flow.
            "authorization_endpoint": f"{issuer_url}/authorize",
            "token_endpoint": f"{issuer_url}/token",
            "jwks_uri": f"{issuer_url}/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
        },
        "/jwks": {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": OIDC_KEY_ID,
                    "use": "sig",
                    "alg": "RS256",
                    "n": _b64(numbers.n),
                    "e": _b64(numbers.e),
                }
            ]
        },
    }


def _issuer_server(documents: dict[str, dict[str, Any]], port: int) -> ThreadingHTTPServer:
    bodies = {path: json.dumps(doc).encode("utf-8") for path, doc in documents.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path.split("?", 1)[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            payload = body if body is not None else b"{}"
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def feast_cli_main() -> int:
    """``feast`` (the real CLI, run in the server process), with one fix when
    ``features.cached_permissions`` is on (``EMILY_FEAST_CACHED_PERMISSIONS=1``): Feast 0.67's
    security manager lists the permissions with ``allow_cache=False``, one SQL round trip to
    the registry for *every* permission check (five per read of our views). Reading them from
    the registry cache, refreshed like every other object every ``registry_cache_ttl_s``, is
    what every other registry lookup on the serving path does; a revoked permission then takes
    up to that TTL to apply, exactly as a deleted view does."""
    if os.environ.get("EMILY_FEAST_CACHED_PERMISSIONS") == "1":
        from feast.permissions import security_manager

        def permissions(self: Any) -> Any:
            project = self._current_project.get() or self._project
            return self._registry.list_permissions(project=project, allow_cache=True)

        security_manager.SecurityManager.permissions = property(permissions)  # type: ignore[method-assign, assignment]
    from feast.cli.cli import cli

    result: int = cli()
    return result


def launcher_main(argv: list[str] | None = None) -> int:
    """The launcher process: the token issuer (if asked) in a thread, ``feast serve`` as a child;
    exits with the child, and stops the child on SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m emily.stack.feast_launcher")
    parser.add_argument("--issuer-port", type=int, default=0)
    parser.add_argument("--key", type=Path)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = [c for c in args.command if c != "--"]
    server = None
    if args.issuer_port:
        issuer = f"http://127.0.0.1:{args.issuer_port}"
        server = _issuer_server(issuer_documents(args.key.read_bytes(), issuer), args.issuer_port)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def _stop(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    code = child.wait()
    if server is not None:
        server.shutdown()
    return code


def serve_main(settings: Settings, host: str, port: int) -> int:
    """``emily features serve``: ``feast serve`` in this process, configured like the local
    stack's (for a supervisor such as systemd; the secrets the YAML's placeholders stand for
    come from the settings, i.e. the unit's credentials, into this process's environment only).
    ``features.auth = local`` needs the local stack's issuer and is refused here."""
    from emily.errors import ConfigError
    from emily.stack.features import (
        INTRA_SECRET,
        feast_config,
        serve_arguments,
        serve_environment,
        server_auth,
        write_yaml,
    )

    if settings.features.auth == "local":
        raise ConfigError(
            "the local issuer runs only under the local stack (`emily up`)",
            field="features.auth",
            hint="use oidc (an external IdP) or none (loopback only)",
        )
    config = write_yaml(
        settings.state_dir / "feature_store.yaml",
        feast_config(settings, secrets_inline=False, auth=server_auth(settings, None)),
    )
    os.environ.update(serve_environment(settings))
    os.environ.pop(INTRA_SECRET, None)
    sys.argv = ["feast", *serve_arguments(settings, config, host, port)]
    return feast_cli_main()


if __name__ == "__main__":  # pragma: no cover - the launcher process
    sys.exit(launcher_main())
