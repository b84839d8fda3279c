"""Inference gateway: one OpenAI-compatible client over SGLang and llama.cpp.

Names are resolved lazily: ``emily.config`` imports ``emily.inference.settings``, and the client
imports ``emily.config``, so an eager import here would be circular."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emily.inference.client import InferenceClient
    from emily.inference.errors import (
        BackendUnavailable,
        CircuitOpen,
        DeadlineExceeded,
        InferenceError,
        InvalidSchemaError,
        InvalidStructuredOutput,
    )
    from emily.inference.types import ChatMessage, ChatResult, StructuredResult, TokenUsage

_WHERE = {
    "InferenceClient": "emily.inference.client",
    "BackendUnavailable": "emily.inference.errors",
    "CircuitOpen": "emily.inference.errors",
    "DeadlineExceeded": "emily.inference.errors",
    "InferenceError": "emily.inference.errors",
    "InvalidSchemaError": "emily.inference.errors",
    "InvalidStructuredOutput": "emily.inference.errors",
    "ChatMessage": "emily.inference.types",
    "ChatResult": "emily.inference.types",
    "StructuredResult": "emily.inference.types",
    "TokenUsage": "emily.inference.types",
}
__all__ = [
    "BackendUnavailable",
    "ChatMessage",
    "ChatResult",
    "CircuitOpen",
    "DeadlineExceeded",
    "InferenceClient",
    "InferenceError",
    "InvalidSchemaError",
    "InvalidStructuredOutput",
    "StructuredResult",
    "TokenUsage",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'emily.inference' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
