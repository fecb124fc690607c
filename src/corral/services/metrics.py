"""Prometheus metrics, one registry per app so tests and replicas never share counters."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, SummaryMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from corral.domain.priority import QUEUE_CLASSES
from corral.domain.states import JobStatus


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs_submitted = Counter(
            "corral_jobs_submitted", "Jobs accepted", registry=self.registry
        )
        self.jobs_claimed = Counter(
            "corral_jobs_claimed", "Attempts handed to executors", registry=self.registry
        )
        self.jobs_finished = Counter(
            "corral_jobs_finished",
            "Jobs that reached a final state or were requeued",
            ["status"],
            registry=self.registry,
        )
        self.jobs_reaped = Counter(
            "corral_leases_expired", "Attempts whose lease ran out", registry=self.registry
        )
        self.queue_wait = Histogram(
            "corral_queue_wait_seconds",
            "Time from submission (or requeue) to claim",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
            registry=self.registry,
        )
        self.jobs = Gauge("corral_jobs", "Jobs by status", ["status"], registry=self.registry)
        self.pending = Gauge(
            "corral_pending_jobs",
            "Pending jobs by priority class",
            ["priority"],
            registry=self.registry,
        )
        self.pruned = Counter(
            "corral_pruned",
            "Rows deleted by retention, by kind: jobs, attempts, output_chunks, artifacts, "
            "file_chunks, idempotency_keys, workflows, files, executors",
            ["kind"],
            registry=self.registry,
        )
        self.reclaimed_bytes = Counter(
            "corral_reclaimed_bytes",
            "Bytes of free SQLite pages given back to the file system after a purge",
            registry=self.registry,
        )
        self.http = HttpCounters()
        self.registry.register(HttpCollector(self.http))
        self._finished: dict[JobStatus, Counter] = {}  # label children, made when first used

    def count_finished(self, status: JobStatus) -> None:
        """``jobs_finished`` by status, without a label lookup (and its lock) per report."""
        child = self._finished.get(status)
        if child is None:
            child = self._finished[status] = self.jobs_finished.labels(status=status.value)
        child.inc()

    def set_queue_gauges(self, by_status: dict[JobStatus, int], pending: dict[int, int]) -> None:
        """Gauges are read from the store at scrape time, so every replica reports the truth."""
        for status, count in by_status.items():
            self.jobs.labels(status=status.value).set(count)
        for value, name in QUEUE_CLASSES.items():
            self.pending.labels(priority=name).set(pending.get(value, 0))


class HttpCounters:
    """Requests answered by this process, by outcome, and the time they took.

    Plain numbers rather than prometheus ``Counter``s: the headers middleware
    records every request, and a lock plus a label lookup per request shows on
    the hot path. Only the event loop's thread writes them, so ``+=`` is safe;
    they are turned into Prometheus samples at scrape time (``HttpCollector``)
    and can be read directly for JSON views.
    """

    __slots__ = ("error", "success", "time_ms")

    def __init__(self) -> None:
        self.success = 0  # status < 400
        self.error = 0
        self.time_ms = 0.0  # until the response headers were sent, summed

    def record(self, status: int, elapsed_ms: float) -> None:
        if status < 400:
            self.success += 1
        else:
            self.error += 1
        self.time_ms += elapsed_ms

    @property
    def total(self) -> int:
        return self.success + self.error

    @property
    def average_ms(self) -> float:
        """Mean response time so far; 0.0 before the first request."""
        total = self.total
        return self.time_ms / total if total else 0.0


class HttpCollector(Collector):
    """Exposes ``HttpCounters`` as a counter by outcome and a summary in seconds."""

    def __init__(self, counters: HttpCounters) -> None:
        self._counters = counters

    def collect(self) -> Iterator[Metric]:
        counters = self._counters
        requests = CounterMetricFamily(
            "corral_http_requests", "HTTP requests answered, by outcome", labels=["outcome"]
        )
        requests.add_metric(["success"], counters.success)
        requests.add_metric(["error"], counters.error)
        yield requests
        yield SummaryMetricFamily(
            "corral_http_response_time_seconds",
            "Time until the response headers were sent",
            count_value=counters.total,
            sum_value=counters.time_ms / 1000,
        )
