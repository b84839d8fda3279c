from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from opentelemetry import trace

from emily import locator
from emily.config import Settings, load_settings
from emily.errors import StackNotRunningError
from emily.telemetry.logs import configure_logging, get_logger
from emily.telemetry.mlflow_rest import ensure_experiment
from emily.telemetry.tracing import (
    LANGFUSE_OTLP_PATH,
    MLFLOW_EXPERIMENT_HEADER,
    current_provider,
    export_targets,
    force_flush,
    get_tracer,
    langfuse_target,
    setup_tracing,
    shutdown_tracing,
)
from tests.fixtures.mlflow import MlflowServer


@pytest.fixture
def tracing(mlflow_server: MlflowServer) -> Iterator[Settings]:
    settings = mlflow_server.settings.model_copy(
        update={
            "telemetry": mlflow_server.settings.telemetry.model_copy(
                update={"mlflow_experiment": "emily-tests"}
            )
        }
    )
    provider = setup_tracing(settings, service_name="emily-tests")
    assert provider is not None and current_provider() is provider
    try:
        yield settings
    finally:
        shutdown_tracing()


def _trace_id(span: trace.Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


def _spans_in_mlflow(settings: Settings, trace_id: str) -> dict[str, str]:
    server = locator.mlflow(settings)
    experiment = ensure_experiment(server, settings.telemetry.mlflow_experiment)
    client = MlflowClient(tracking_uri=server.uri)
    found = client.search_traces(locations=[experiment], max_results=100)
    wanted = [t for t in found if t.info.trace_id == f"tr-{trace_id}"]
    assert wanted, f"trace {trace_id} not in MLflow experiment {experiment}"
    return {span.name: span.span_id for span in wanted[0].data.spans}


def test_spans_arrive_in_mlflow(tracing: Settings) -> None:
    tracer = trace.get_tracer("tests.telemetry")  # the global API, as library code uses it
    with tracer.start_as_current_span("turn", attributes={"emily.turn": 1}) as root:
        with tracer.start_as_current_span("perceive"):
            pass
        trace_id = _trace_id(root)
    assert force_flush()
    spans = _spans_in_mlflow(tracing, trace_id)
    assert {"turn", "perceive"} <= set(spans)


def test_log_line_inside_span_carries_trace_and_span_ids(tracing: Settings) -> None:
    stream = io.StringIO()
    configure_logging(load_settings(log_format="json"), stream=stream)
    try:
        with get_tracer("tests.logs").start_as_current_span("logged") as span:
            get_logger("tests").info("inside_span")
            trace_id = _trace_id(span)
            span_id = format(span.get_span_context().span_id, "016x")
    finally:
        configure_logging(load_settings(log_format="json"))
    record = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert record["event"] == "inside_span"
    assert record["trace_id"] == trace_id and record["span_id"] == span_id
    assert force_flush()
    # The id in the log line finds the trace in MLflow: logs and traces join up.
    assert "logged" in _spans_in_mlflow(tracing, trace_id)


def test_tracers_follow_reconfiguration(tracing: Settings) -> None:
    tracer = get_tracer("tests.switch")
    shutdown_tracing()
    with tracer.start_as_current_span("dropped") as span:
        assert not span.get_span_context().is_valid
    assert setup_tracing(tracing) is not None
    with tracer.start_as_current_span("kept") as span:
        assert span.get_span_context().is_valid
        trace_id = _trace_id(span)
    assert force_flush()
    assert "kept" in _spans_in_mlflow(tracing, trace_id)


def test_disabled_tracing_returns_none(settings: Settings) -> None:
    off = settings.model_copy(
        update={"telemetry": settings.telemetry.model_copy(update={"enabled": False})}
    )
    assert setup_tracing(off) is None
    assert current_provider() is None
    assert force_flush()


def test_no_backend_means_no_tracing(tmp_path: Path) -> None:
    lonely = load_settings(state_dir=tmp_path)
    with pytest.raises(StackNotRunningError, match="no mlflow configured"):
        locator.mlflow_uri(lonely)
    assert export_targets(lonely) == []
    assert setup_tracing(lonely) is None


def test_dead_mlflow_url_fails_fast(tmp_path: Path) -> None:
    # A port nothing listens on: the health probe fails at once instead of MLflow's retries.
    dead = load_settings(state_dir=tmp_path, mlflow={"tracking_uri": "http://127.0.0.1:9/"})
    assert locator.mlflow_uri(dead) == "http://127.0.0.1:9"
    assert export_targets(dead) == []


def test_plain_otlp_endpoint_without_mlflow(tmp_path: Path) -> None:
    collector = load_settings(
        state_dir=tmp_path, telemetry={"otlp_endpoint": "http://127.0.0.1:4318/v1/traces"}
    )
    targets = export_targets(collector)
    assert [(t.name, t.endpoint, t.headers) for t in targets] == [
        ("otlp", "http://127.0.0.1:4318/v1/traces", {})
    ]


def test_mlflow_target_carries_experiment_header(tracing: Settings) -> None:
    targets = {t.name: t for t in export_targets(tracing)}
    server = locator.mlflow(tracing)
    assert targets["mlflow"].endpoint == f"{server.uri}/v1/traces"
    experiment = ensure_experiment(server, tracing.telemetry.mlflow_experiment)
    headers = targets["mlflow"].headers
    assert headers[MLFLOW_EXPERIMENT_HEADER] == experiment
    scheme, token = headers["Authorization"].split()
    assert scheme == "Basic" and base64.b64decode(token).decode() == ":".join(server.auth or ())


def test_langfuse_target_uses_basic_auth(tmp_path: Path) -> None:
    assert langfuse_target(load_settings(state_dir=tmp_path)) is None
    half = load_settings(
        state_dir=tmp_path,
        telemetry={"langfuse_host": "https://lf.example", "langfuse_public_key": "pk-lf-1"},
    )
    assert langfuse_target(half) is None
    full = load_settings(
        state_dir=tmp_path,
        telemetry={
            "langfuse_host": "https://lf.example/",
            "langfuse_public_key": "pk-lf-1",
            "langfuse_secret_key": "sk-lf-2",
        },
    )
    target = langfuse_target(full)
    assert target is not None
    assert target.endpoint == "https://lf.example" + LANGFUSE_OTLP_PATH
    scheme, token = target.headers["Authorization"].split()
    assert scheme == "Basic" and base64.b64decode(token).decode() == "pk-lf-1:sk-lf-2"
    assert "sk-lf-2" not in repr(full.telemetry)
    # Langfuse is an extra destination: without MLflow it is the only one.
    assert [t.name for t in export_targets(full)] == ["langfuse"]


def test_experiment_errors_are_typed(mlflow_server: MlflowServer) -> None:
    from emily.errors import StackError

    server = locator.mlflow(mlflow_server.settings)
    with pytest.raises(StackError, match="refused experiment"):
        ensure_experiment(server, "")
    fresh = ensure_experiment(server, "emily-tests-fresh")
    assert ensure_experiment(server, "emily-tests-fresh") == fresh
    anonymous = locator.MlflowEndpoint(server.uri)
    with pytest.raises(StackError, match="refused our credentials"):
        ensure_experiment(anonymous, "emily-tests-fresh")


def test_query_strings_never_reach_the_trace_store(tracing: Settings) -> None:
    tracer = trace.get_tracer("tests.redaction")
    attributes = {
        "url.full": "http://127.0.0.1:8765/v1/episodes?token=S3CRET",
        "url.query": "token=S3CRET",
        "http.target": "/v1/episodes?token=S3CRET",
    }
    with tracer.start_as_current_span("request", attributes=attributes) as span:
        trace_id = _trace_id(span)
    assert force_flush()
    server = locator.mlflow(tracing)
    experiment = ensure_experiment(server, tracing.telemetry.mlflow_experiment)
    found = MlflowClient(tracking_uri=server.uri).search_traces(
        locations=[experiment], max_results=100
    )
    stored = next(t for t in found if t.info.trace_id == f"tr-{trace_id}")
    attrs = stored.data.spans[0].attributes
    assert "S3CRET" not in json.dumps(attrs)
    assert attrs["url.full"] == "http://127.0.0.1:8765/v1/episodes"
    assert "url.query" not in attrs
