"""structlog configuration: JSON lines in production (or when not on a terminal), a readable
console in a terminal; context bound with ``structlog.contextvars`` flows into every line, and an
active OpenTelemetry span adds ``trace_id``/``span_id`` so logs and traces join up."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import trace

if TYPE_CHECKING:
    from emily.config import Settings

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _add_trace_ids(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


def wants_json(settings: Settings, stream: Any = None) -> bool:
    """JSON unless asked for console, or auto-mode in development on a terminal."""
    if settings.log_format != "auto":
        return settings.log_format == "json"
    stream = stream if stream is not None else sys.stderr
    return settings.environment == "production" or not stream.isatty()


class _CurrentStderr:
    """Resolve ``sys.stderr`` at write time: test runners and Rich swap it after configuration."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(settings: Settings, stream: Any = None) -> None:
    """Configure structlog (and the stdlib root logger, so library logs share the format)."""
    stream = stream if stream is not None else _CurrentStderr()
    level = _LEVELS[settings.log_level]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    renderer: Any
    if wants_json(settings, stream):
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    # Library loggers (psycopg, httpx, uvicorn) keep the stdlib path; only warnings and up.
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.WARNING))


def get_logger(name: str, **context: Any) -> structlog.stdlib.BoundLogger:
    """A logger with ``component=name`` and any extra context bound."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(component=name, **context)
    return logger
