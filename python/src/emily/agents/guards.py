"""What stands between the network and the agents API's handlers: a body size limit that acts
before anything is parsed or authenticated, and error bodies that never echo what was sent.

FastAPI's default 422 repeats every invalid input: a 50 MB body came back whole, and a NaN or a
lone surrogate made the 422 itself fail to render (a 500). Here an error names the field and
says what is wrong with it, in at most a few hundred characters of valid UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

# The ASGI types, as Starlette spells them (Starlette arrives through FastAPI).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_MAX_TEXT = 200


def safe_text(value: object, limit: int = _MAX_TEXT) -> str:
    """``value`` as printable, valid UTF-8 (lone surrogates escaped), at most ``limit`` chars."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def field_of(loc: Sequence[Any]) -> str:
    """``("body", "stimulus", "at")`` → ``stimulus.at``."""
    parts = [safe_text(p, 64) for p in loc]
    if parts and parts[0] in {"body", "path", "query"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_body(errors: Sequence[Any]) -> dict[str, Any]:
    """A 422 body: the first offending field, and every error without its input."""
    detail = [
        {
            "loc": [safe_text(p, 64) for p in e.get("loc", ())],
            "msg": safe_text(e.get("msg", "invalid")),
            "type": safe_text(e.get("type", "value_error"), 64),
        }
        for e in list(errors)[:20]
    ]
    field = field_of(errors[0].get("loc", ())) if errors else "body"
    return {"detail": detail, "field": field}


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with 413 before the app sees it.

    A declared ``Content-Length`` over the limit is refused without reading a byte; a body
    without one (chunked) is read up to the limit and refused the moment it passes it. The
    body read here (at most ``max_bytes``) is then handed on to the app unchanged."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = {"detail": f"request body larger than {self.max_bytes} bytes"}
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _json(send, 400, {"detail": "invalid Content-Length header"})
                return
            if int(declared) > self.max_bytes:
                await _json(send, 413, too_large)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _json(send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
