"""One backend of the chain: where it is, what kind of server it is, its OpenAI client and its
circuit breaker."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
import openai

from emily import locator
from emily.errors import StackNotRunningError
from emily.inference.breaker import CircuitBreaker
from emily.inference.errors import BackendUnavailable
from emily.inference.settings import BackendSettings

if TYPE_CHECKING:
    from emily.config import Settings


def server_root(base_url: str) -> str:
    """``http://host:port/v1`` → ``http://host:port`` (where /health and /props live)."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


class Backend:
    def __init__(
        self, config: BackendSettings, settings: Settings, http_client: httpx2.AsyncClient
    ) -> None:
        self.config = config
        self.name = config.name
        self._settings = settings
        self._http = http_client
        self.breaker = CircuitBreaker(
            settings.inference.breaker.failure_threshold,
            settings.inference.breaker.reset_timeout_s,
        )
        self._clients: dict[str, openai.AsyncOpenAI] = {}
        self._kind: str | None = None if config.kind == "auto" else config.kind
        self._model: str | None = config.model

    def base_url(self) -> str:
        """Configured URL, else the local stack's (re-read each time: a restart may move it)."""
        if self.config.base_url is not None:
            return self.config.base_url
        try:
            return locator.llm_base_url(self._settings)
        except StackNotRunningError as exc:
            raise BackendUnavailable(exc.message, field=self.name, hint=exc.hint) from exc

    def client(self) -> openai.AsyncOpenAI:
        url = self.base_url()
        found = self._clients.get(url)
        if found is None:
            key = self.api_key() or "none"
            found = openai.AsyncOpenAI(
                base_url=url,
                api_key=key,
                timeout=self.config.timeout_s,
                max_retries=0,  # retries, backoff and fallback are ours
                http_client=self._http,
            )
            self._clients[url] = found
        return found

    def _headers(self) -> dict[str, str]:
        key = self.api_key()
        return {} if key is None else {"Authorization": f"Bearer {key}"}

    def api_key(self) -> str | None:
        """The configured key; for the local stack's server, the key it was started with."""
        if self.config.api_key is not None:
            return self.config.api_key.get_secret_value()
        if self.config.base_url is None:
            return locator.llm_api_key(self._settings)
        return None

    async def _get_ok(self, path: str) -> bool:
        url = server_root(self.base_url()) + path
        try:
            response = await self._http.get(url, headers=self._headers(), timeout=5.0)
        except httpx2.HTTPError:
            return False
        return response.status_code == 200

    async def kind(self) -> str:
        """llama-cpp or sglang: configured, else detected once (llama.cpp serves /props, SGLang
        /get_model_info or /server_info). Unknown servers get the OpenAI ``json_schema`` form,
        which is SGLang's."""
        if self._kind is None:
            if await self._get_ok("/props"):
                self._kind = "llama-cpp"
            else:
                self._kind = "sglang"
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
            return await self._get_ok("/health")
        except BackendUnavailable:
            return False
