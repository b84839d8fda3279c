"""Span attributes that could carry credentials never leave the process.

A bearer token or API key sent in a query string (``?token=...``) would otherwise be stored
with the span (``url.query``, ``url.full``, ``http.url``, ``http.target``) in MLflow or Langfuse,
where every local user with access to the trace store can read it. The exporter wrapper drops
``url.query`` and cuts the query string off URL attributes before export."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

DROPPED = frozenset({"url.query"})
URL_ATTRIBUTES = frozenset({"url.full", "http.url", "http.target", "url.original"})


def redact_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if key in DROPPED:
            continue
        if key in URL_ATTRIBUTES and isinstance(value, str) and "?" in value:
            value = value.split("?", 1)[0]
        clean[key] = value
    return clean


def _needs_redaction(span: ReadableSpan) -> bool:
    attributes = span.attributes or {}
    return any(
        key in DROPPED or (key in URL_ATTRIBUTES and "?" in str(value))
        for key, value in attributes.items()
    )


def redact(span: ReadableSpan) -> ReadableSpan:
    """The span itself when clean, else a copy without query strings."""
    if not _needs_redaction(span):
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=redact_attributes(span.attributes),
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingExporter(SpanExporter):
    """Wraps an exporter; every span passes ``redact`` first."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([redact(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
