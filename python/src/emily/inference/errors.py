"""Typed failures of the inference gateway."""

from __future__ import annotations

from emily.errors import EmilyError


class InferenceError(EmilyError):
    """A request failed for a reason that retrying or another backend will not fix."""


class BackendUnavailable(InferenceError):  # noqa: N818 - names fixed by the public API
    """No backend of the chain answered (connection refused, 5xx, 429 after retries)."""


class CircuitOpen(BackendUnavailable):
    """The backend failed repeatedly; requests fail fast until its reset timeout passes."""


class ApiKeyRefusedError(InferenceError):
    """The server refused our API key (401/403): a configuration error, never retried."""


class DeadlineExceeded(InferenceError):  # noqa: N818
    """The per-request deadline passed before an answer arrived."""


class InvalidStructuredOutput(InferenceError):  # noqa: N818
    """The model's answer did not validate against the schema, twice."""


class InvalidSchemaError(InferenceError):
    """The schema cannot be expressed as a generation grammar; rejected before any request."""
