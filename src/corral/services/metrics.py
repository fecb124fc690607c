"""Prometheus metrics, one registry per app so tests and replicas never share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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

    def set_queue_gauges(self, by_status: dict[JobStatus, int], pending: dict[int, int]) -> None:
        """Gauges are read from the store at scrape time, so every replica reports the truth."""
        for status, count in by_status.items():
            self.jobs.labels(status=status.value).set(count)
        for value, name in QUEUE_CLASSES.items():
            self.pending.labels(priority=name).set(pending.get(value, 0))
