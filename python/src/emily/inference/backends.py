"""One backend of the chain: where it is, what kind of server it is, its API key, its OpenAI
client and its circuit breaker.

Every request to a backend carries its key: the SDK's requests (chat, streams, completions,
``/v1/models``) through the client's ``api_key``, our own probes (``/props``, ``/health``)
through ``auth_headers``. The local stack's llama-server refuses requests without it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx2
import openai

from emily import locator
from emily.errors import StackNotRunningError
from emily.inference.breaker import CircuitBreaker
from emily.inference.errors import ApiKeyRefusedError, BackendUnavailable
from emily.inference.settings import BackendSettings

if TYPE_CHECKING:
    from emily.config import Settings

# The SDK insists on a key; servers without auth ignore the header.
NO_KEY = "none"
PROBE_TIMEOUT_S = 5.0


def server_root(base_url: str) -> str:
    """``http://host:port/v1`` → ``http://host:port`` (where /health and /props live)."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


class Backend:
    def __init__(
        self,
        config: BackendSettings,
        settings: Settings,
        http_client: httpx2.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.name = config.name
        self._settings = settings
        self._http = http_client
        self.breaker = CircuitBreaker(
            settings.inference.breaker.failure_threshold,
            settings.inference.breaker.reset_timeout_s,
            clock=clock,
        )
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        self._kind: str | None = None if config.kind == "auto" else config.kind
        self._model: str | None = config.model

    @property
    def is_local(self) -> bool:
        """The local stack's llama-server (no ``base_url`` configured)."""
        return self.config.base_url is None

    def base_url(self) -> str:
        """Configured URL, else the local stack's (re-read each time: a restart may move it)."""
        if self.config.base_url is not None:
            return self.config.base_url
        try:
            return locator.llm_base_url(self._settings)
        except StackNotRunningError as exc:
            raise BackendUnavailable(exc.message, field=self.name, hint=exc.hint) from exc

    def api_key(self) -> str | None:
        """The configured key; for the local stack's server, the key it was started with."""
        if self.config.api_key is not None:
            return self.config.api_key.get_secret_value()
        if self.is_local:
            return locator.llm_api_key(self._settings)
        return None

    def key_hint(self) -> str:
        if self.is_local:
            return "the local key is <state_dir>/secrets/llm-api-key: is this the same state dir?"
        return f"set api_key for backend '{self.name}' in EMILY_INFERENCE__BACKENDS"

    def client(self) -> openai.AsyncOpenAI:
        url, key = self.base_url(), self.api_key() or NO_KEY
        # Keyed by the key too: a client made before the stack started must not keep "none".
        found = self._clients.get((url, key))
        if found is None:
            found = openai.AsyncOpenAI(
                base_url=url,
                api_key=key,
                timeout=self.config.timeout_s,
                max_retries=0,  # retries, backoff and fallback are ours
                http_client=self._http,
            )
            self._clients[(url, key)] = found
        return found

    def auth_headers(self) -> dict[str, str]:
        key = self.api_key()
        return {} if key is None else {"Authorization": f"Bearer {key}"}

    async def _status(self, url: str) -> int | None:
        """HTTP status of ``GET url`` with our key; None when the server cannot be reached."""
        try:
            response = await self._http.get(
                url, headers=self.auth_headers(), timeout=PROBE_TIMEOUT_S
            )
        except httpx2.HTTPError:
            return None
        return response.status_code

    async def kind(self) -> str:
        """llama-cpp or sglang: configured, else detected once (llama.cpp serves /props, SGLang
        /get_model_info or /server_info). Unknown servers get the OpenAI ``json_schema`` form,
        which is SGLang's. A refused key is an error, not a reason to guess the other kind."""
        if self._kind is None:
            status = await self._status(server_root(self.base_url()) + "/props")
            if status in (401, 403):
                raise ApiKeyRefusedError(
                    f"the server refused the API key (HTTP {status}) on /props",
                    field=self.name,
                    hint=self.key_hint(),
                )
            self._kind = "llama-cpp" if status == 200 else "sglang"
        return self._kind

    async def model(self) -> str:
        """Configured model name, else the first one the server lists."""
        if self._model is None:
            page = await self.client().models.list()
            self._model = page.data[0].id if page.data else "default"
        return self._model

    async def healthy(self) -> bool:
        """``/health`` (llama.cpp, SGLang) answering 200; no breaker involvement."""
        try:
            return await self._status(server_root(self.base_url()) + "/health") == 200
        except BackendUnavailable:
            return False

    async def key_accepted(self) -> bool | None:
        """Does ``<base_url>/models`` (behind the key on llama-server) answer 200 with our
        key? None when the server cannot be reached; False when it answers anything else."""
        try:
            status = await self._status(self.base_url() + "/models")
        except BackendUnavailable:
            return None
        return None if status is None else status == 200
