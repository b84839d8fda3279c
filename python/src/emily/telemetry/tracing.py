"""OpenTelemetry tracing: spans go over OTLP/HTTP to the local MLflow server (``/v1/traces``,
MLflow >= 3.6) and, when ``LANGFUSE_*`` settings are present, to Langfuse as well.

MLflow files incoming spans under the experiment named in the ``x-mlflow-experiment-id`` header
(the endpoint rejects requests without it), so the experiment is looked up or created first.
Langfuse's OTLP endpoint is ``<host>/api/public/otel/v1/traces`` with Basic auth
``public_key:secret_key``.

The global OpenTelemetry tracer provider can be set only once per process, yet tests and
long-running services reconfigure tracing. So the global is a small switch that forwards every
tracer to the SDK provider of the latest ``setup_tracing`` call (or to a no-op one after
``shutdown_tracing``); tracers taken at import time keep working across reconfiguration.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.util import types
from opentelemetry.util._decorator import _agnosticcontextmanager

from emily import locator
from emily.errors import EmilyError, StackError
from emily.telemetry.logs import get_logger
from emily.telemetry.mlflow_rest import auth_headers, ensure_experiment, healthy
from emily.telemetry.redaction import RedactingExporter

if TYPE_CHECKING:
    from emily.config import Settings

log = get_logger("tracing")

MLFLOW_EXPERIMENT_HEADER = "x-mlflow-experiment-id"
OTLP_TRACES_PATH = "/v1/traces"
LANGFUSE_OTLP_PATH = "/api/public/otel/v1/traces"
_NOOP_TRACER = trace.NoOpTracer()


@dataclass(frozen=True)
class ExportTarget:
    """One OTLP/HTTP destination."""

    name: str
    endpoint: str
    headers: dict[str, str]


class _SwitchTracer(trace.Tracer):
    """Forwards to the tracer of whichever SDK provider is current when a span starts."""

    def __init__(self, switch: _SwitchProvider, args: tuple[Any, ...]) -> None:
        self._switch = switch
        self._args = args
        self._cached: tuple[TracerProvider, trace.Tracer] | None = None

    def _real(self) -> trace.Tracer:
        provider = self._switch.current
        if provider is None:
            return _NOOP_TRACER
        cached = self._cached
        if cached is None or cached[0] is not provider:
            cached = (provider, provider.get_tracer(*self._args))
            self._cached = cached
        return cached[1]

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        return self._real().start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        with self._real().start_as_current_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
            end_on_exit,
        ) as span:
            yield span


class _SwitchProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.current: TracerProvider | None = None

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes | None = None,
    ) -> trace.Tracer:
        return _SwitchTracer(
            self, (instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        )


_SWITCH = _SwitchProvider()
_LOCK = threading.Lock()


def _install_switch() -> bool:
    """Make the switch the global provider; False if someone else installed one first."""
    current = trace.get_tracer_provider()
    if current is _SWITCH:
        return True
    if isinstance(current, trace.ProxyTracerProvider):
        trace.set_tracer_provider(_SWITCH)
        return trace.get_tracer_provider() is _SWITCH
    return False


def mlflow_target(settings: Settings) -> ExportTarget:
    """The MLflow OTLP endpoint and the experiment header; raises when MLflow is unreachable."""
    server = locator.mlflow(settings)
    if not healthy(server.uri):
        # A dead server would make every export retry; a quick probe fails fast instead.
        raise StackError(f"MLflow at {server.uri} does not answer /health")
    experiment_id = ensure_experiment(server, settings.telemetry.mlflow_experiment)
    endpoint = settings.telemetry.otlp_endpoint or f"{server.uri}{OTLP_TRACES_PATH}"
    headers = {MLFLOW_EXPERIMENT_HEADER: experiment_id, **auth_headers(server)}
    return ExportTarget("mlflow", endpoint, headers)


def langfuse_target(settings: Settings) -> ExportTarget | None:
    """Langfuse's OTLP endpoint with Basic auth, when host and both keys are configured."""
    telemetry = settings.telemetry
    if not (telemetry.langfuse_host and telemetry.langfuse_public_key):
        return None
    if telemetry.langfuse_secret_key is None:
        return None
    pair = (
        f"{telemetry.langfuse_public_key.get_secret_value()}:"
        f"{telemetry.langfuse_secret_key.get_secret_value()}"
    )
    token = base64.b64encode(pair.encode()).decode("ascii")
    return ExportTarget(
        "langfuse",
        telemetry.langfuse_host.rstrip("/") + LANGFUSE_OTLP_PATH,
        # Langfuse's direct-OTLP ingestion asks exporters to announce the ingestion version.
        {"Authorization": f"Basic {token}", "x-langfuse-ingestion-version": "4"},
    )


def export_targets(settings: Settings) -> list[ExportTarget]:
    """Every destination that is configured and reachable; MLflow problems are logged, not
    raised, so a missing tracing backend never stops the application."""
    targets: list[ExportTarget] = []
    try:
        targets.append(mlflow_target(settings))
    except EmilyError as exc:
        if settings.telemetry.otlp_endpoint:
            # A plain OTLP collector needs no MLflow experiment.
            targets.append(ExportTarget("otlp", settings.telemetry.otlp_endpoint, {}))
        else:
            log.warning("tracing_mlflow_unavailable", reason=str(exc))
    langfuse = langfuse_target(settings)
    if langfuse is not None:
        targets.append(langfuse)
    return targets


def _exporter(target: ExportTarget, timeout_s: float) -> SpanExporter:
    exporter = OTLPSpanExporter(endpoint=target.endpoint, headers=target.headers, timeout=timeout_s)
    return RedactingExporter(exporter)


def setup_tracing(settings: Settings, *, service_name: str = "emily") -> TracerProvider | None:
    """Configure OpenTelemetry export for this process. Returns the SDK provider, or ``None``
    when tracing is disabled or no destination is reachable (spans are then no-ops)."""
    telemetry = settings.telemetry
    if not telemetry.enabled:
        shutdown_tracing()
        return None
    targets = export_targets(settings)
    if not targets:
        shutdown_tracing()
        return None
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service_name}),
        sampler=ParentBased(TraceIdRatioBased(telemetry.sample_ratio)),
    )
    for target in targets:
        processor = BatchSpanProcessor(
            _exporter(target, telemetry.export_timeout_s), schedule_delay_millis=1000
        )
        provider.add_span_processor(processor)
    with _LOCK:
        previous = _SWITCH.current
        _SWITCH.current = provider
        installed = _install_switch()
    if previous is not None:
        previous.shutdown()
    if not installed:
        log.warning("tracing_global_provider_taken", hint="use the returned provider's tracers")
    log.info(
        "tracing_enabled",
        service=service_name,
        targets=[t.name for t in targets],
        endpoints=[t.endpoint for t in targets],
    )
    return provider


def current_provider() -> TracerProvider | None:
    """The SDK provider of the latest ``setup_tracing``, if tracing is on."""
    return _SWITCH.current


def force_flush(timeout_s: float = 10.0) -> bool:
    """Export every finished span now (before reading traces back, before exit)."""
    provider = _SWITCH.current
    if provider is None:
        return True
    return provider.force_flush(int(timeout_s * 1000))


def shutdown_tracing() -> None:
    """Flush and stop the exporters; later spans are no-ops until ``setup_tracing`` again."""
    with _LOCK:
        provider = _SWITCH.current
        _SWITCH.current = None
    if provider is not None:
        provider.shutdown()


def get_tracer(name: str) -> trace.Tracer:
    """A tracer that follows reconfiguration (same as ``opentelemetry.trace.get_tracer``)."""
    return _SWITCH.get_tracer(name)
