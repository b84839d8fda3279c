"""Bearer tokens for the feature server.

* ``features.auth = local``: tokens are signed (RS256) with the local issuer's key from the state
  directory's secrets, for the server's client id as audience, with the roles the caller needs
  (the agent: ``writer``; read-only tools: ``reader``) and a short lifetime. Whoever can read the
  key can mint any role, exactly as whoever can read the Redis password can write Redis.
* ``features.auth = oidc``: the deployment provides a token (``features.token``, e.g. from a
  systemd credential refreshed by its IdP client).
* ``features.auth = none``: no token.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emily.errors import ConfigError, StackNotRunningError
from emily.locator import FEATURES, local_record
from emily.stack.features import OIDC_KEY_ID, oidc_key_path
from emily.statefile import StateDir

if TYPE_CHECKING:
    from emily.config import Settings


def mint_local(
    settings: Settings,
    roles: list[str],
    *,
    subject: str = "emily",
    ttl_s: int | None = None,
    issuer: str | None = None,
    key_pem: bytes | None = None,
) -> str:
    """A token the local issuer's server accepts (``issuer``/``key_pem`` override for tests)."""
    import jwt

    state = StateDir(settings.state_dir)
    if issuer is None:
        record = local_record(settings, FEATURES, configure="EMILY_FEATURES__SERVER_URL")
        issuer = str(record.details.get("issuer_url") or "")
        if not issuer:
            raise StackNotRunningError("the local feature server runs without the local issuer")
    if key_pem is None:
        try:
            key_pem = oidc_key_path(state).read_bytes()
        except OSError as exc:
            raise StackNotRunningError(
                "the local feature server's signing key is missing", hint="run `emily up`"
            ) from exc
    now = int(time.time())
    client_id = settings.features.oidc_client_id
    claims = {
        "iss": issuer,
        "sub": subject,
        "preferred_username": subject,
        "aud": client_id,
        "iat": now,
        "exp": now + (ttl_s if ttl_s is not None else settings.features.local_token_ttl_s),
        "jti": uuid.uuid4().hex,
        "resource_access": {client_id: {"roles": list(roles)}},
    }
    return jwt.encode(claims, key_pem, algorithm="RS256", headers={"kid": OIDC_KEY_ID})


@dataclass
class TokenSource:
    """Hands out a valid token, minting a new local one shortly before the old expires."""

    settings: Settings
    roles: list[str]
    subject: str = "emily"
    _token: str | None = field(default=None, repr=False)
    _expires: float = 0.0

    def __call__(self) -> str | None:
        config = self.settings.features
        if config.auth == "none":
            return None
        if config.auth == "oidc" or config.server_url is not None:
            if config.token is None:
                raise ConfigError(
                    "the feature server requires a bearer token",
                    field="EMILY_FEATURES__TOKEN",
                    hint="set it (or EMILY_FEATURES__TOKEN_FILE) from the IdP",
                )
            return config.token.get_secret_value()
        if self._token is None or time.time() > self._expires - 60:
            ttl = config.local_token_ttl_s
            self._token = mint_local(self.settings, self.roles, subject=self.subject, ttl_s=ttl)
            self._expires = time.time() + ttl
        return self._token

    def reset(self) -> None:
        self._token = None
