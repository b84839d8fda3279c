"""The feature monitor as Prometheus gauges (the agents service's ``/metrics``).

The monitor reads PostgreSQL and Redis, so it runs at most every ``metrics_refresh_s`` (in a worker
thread; a scrape in between serves the last values). A failed run leaves
``emily_feature_monitor_up`` at 0 and the last good values in place.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

from emily.telemetry.logs import get_logger

if TYPE_CHECKING:
    from emily.config import Settings
    from emily.features.monitor import MonitorReport

log = get_logger("features.metrics")


class FeatureGauges:
    def __init__(self, registry: CollectorRegistry, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._last = 0.0
        self.up = Gauge(
            "emily_feature_monitor_up",
            "1 when the last feature monitor run succeeded.",
            registry=registry,
        )
        self.ttl = Gauge(
            "emily_feature_ttl_seconds", "TTL of the feature view.", ["view"], registry=registry
        )
        self.age = Gauge(
            "emily_feature_age_seconds",
            "Age of the view's newest event (NaN: none).",
            ["view", "store"],
            registry=registry,
        )
        self.stale = Gauge(
            "emily_feature_stale",
            "1 when the newest online value is older than the view's TTL.",
            ["view"],
            registry=registry,
        )
        self.flagged = Gauge(
            "emily_feature_flagged",
            "1 when the monitor flags the view (stale, behind, missing or drifting).",
            ["view"],
            registry=registry,
        )
        self.missing = Gauge(
            "emily_feature_missing_rate",
            "Share of nulls among the view's recent offline rows.",
            ["view", "feature"],
            registry=registry,
        )
        self.online_missing = Gauge(
            "emily_feature_online_missing_rate",
            "Share of recently active entities without a fresh online row.",
            ["view"],
            registry=registry,
        )
        self.drift_statistic = Gauge(
            "emily_feature_drift_statistic",
            "KS statistic of recent values against the training baseline.",
            ["view", "feature"],
            registry=registry,
        )
        self.drift_p = Gauge(
            "emily_feature_drift_p_value",
            "Holm-adjusted KS p-value against the training baseline.",
            ["view", "feature"],
            registry=registry,
        )
        self.drifting = Gauge(
            "emily_feature_drifting",
            "1 when the feature drifts from its baseline.",
            ["view", "feature"],
            registry=registry,
        )

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.settings.features.metrics_refresh_s

    def refresh(self, *, force: bool = False) -> MonitorReport | None:
        """Run the monitor (unless it ran within ``metrics_refresh_s``) and set the gauges."""
        from emily.features.monitor import monitor

        with self._lock:
            if not force and not self.due():
                return None
            self._last = time.monotonic()
            try:
                report = monitor(self.settings)
            except Exception as exc:
                self.up.set(0)
                log.warning("feature_monitor_failed", error=f"{type(exc).__name__}: {exc}"[:200])
                return None
            self.set(report)
            return report

    def set(self, report: MonitorReport) -> None:
        nan = float("nan")
        for view in report.views:
            self.ttl.labels(view.view).set(view.ttl_s)
            for store, age in (("offline", view.offline_age_s), ("online", view.online_age_s)):
                self.age.labels(view.view, store).set(nan if age is None else age)
            self.stale.labels(view.view).set(1 if "stale" in view.flags else 0)
            self.flagged.labels(view.view).set(1 if view.flags else 0)
            for feature, rate in view.missing_rate.items():
                self.missing.labels(view.view, feature).set(rate)
            online_rate = view.online_missing_rate
            self.online_missing.labels(view.view).set(nan if online_rate is None else online_rate)
            for drift in view.drift:
                p = drift.adjusted_p_value if drift.adjusted_p_value is not None else drift.p_value
                self.drift_statistic.labels(view.view, drift.feature).set(drift.statistic)
                self.drift_p.labels(view.view, drift.feature).set(p)
                self.drifting.labels(view.view, drift.feature).set(1 if drift.drift else 0)
        self.up.set(1)
