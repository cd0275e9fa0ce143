"""Prometheus metrics of one server process (prometheus_client, its own registry per app)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("stellartune_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.errors = Counter("stellartune_request_errors", "Requests answered with a 4xx or 5xx status",
                              ["route", "status"], registry=self.registry)
        self.latency = Histogram("stellartune_request_seconds", "Time from request to response", ["route"],
                                 buckets=SECONDS, registry=self.registry)
        self.batch_texts = Histogram("stellartune_batch_texts", "Texts per forward pass (micro-batch size)",
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=self.registry)
        self.batch_seconds = Histogram("stellartune_batch_seconds", "Time of one forward pass", buckets=SECONDS,
                                       registry=self.registry)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        if status >= 400:
            self.errors.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_batch(self, texts: int, seconds: float) -> None:
        self.batch_texts.observe(texts)
        self.batch_seconds.observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
