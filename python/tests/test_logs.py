from __future__ import annotations

import io
import json

import structlog

from emily.config import load_settings
from emily.telemetry.logs import configure_logging, get_logger, wants_json


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_lines_with_bound_context() -> None:
    stream = io.StringIO()
    configure_logging(load_settings(log_format="json"), stream=stream)
    structlog.contextvars.bind_contextvars(request_id="r-1")
    try:
        get_logger("memory", batch=3).info("ingested", rows=10)
    finally:
        structlog.contextvars.clear_contextvars()
    record = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert record["event"] == "ingested"
    assert record["component"] == "memory"
    assert record["batch"] == 3 and record["rows"] == 10
    assert record["request_id"] == "r-1"
    assert record["level"] == "info"


def test_console_on_terminal_in_development_json_in_production() -> None:
    tty = FakeTTY()
    assert not wants_json(load_settings(environment="development"), tty)
    assert wants_json(load_settings(environment="production"), tty)
    assert wants_json(load_settings(environment="development"), io.StringIO())
    configure_logging(load_settings(log_format="console"), stream=tty)
    get_logger("stack").warning("port busy", port=5432)
    text = tty.getvalue()
    assert "port busy" in text and "5432" in text
    assert not text.lstrip().startswith("{")


def test_level_filtering() -> None:
    stream = io.StringIO()
    configure_logging(load_settings(log_format="json", log_level="warning"), stream=stream)
    get_logger("x").info("hidden")
    get_logger("x").error("shown")
    assert "hidden" not in stream.getvalue()
    assert "shown" in stream.getvalue()
