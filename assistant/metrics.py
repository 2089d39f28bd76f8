"""Prometheus metrics of a served assistant: HTTP requests, answers, ingests and the size of the index.

:meth:`Metrics.of` gives one set per :class:`~assistant.facade.Assistant`, made the first time it is asked
for. It counts answers and ingests by wrapping that instance's ``ask`` and ``ingest``, so every caller in
the process is counted (the API routes, the chat UI, an ingest the facade runs itself) without the facade
knowing about Prometheus. :class:`RequestMetrics` is the ASGI layer that times requests; the server mounts
both and serves :meth:`Metrics.exposition` at ``/metrics``.

Labels come from closed sets only (route templates, known methods, status codes), never from a request's
path or body, so a client cannot grow the number of series.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from assistant.answer.types import Answer
    from assistant.facade import Assistant
    from assistant.ingest.pipeline import IngestReport

#: Upper bounds (seconds) of the request-latency buckets: a cached answer takes milliseconds, a generative one seconds.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Upper bounds (seconds) of the ingest-duration buckets: an unchanged folder, a few files, a large first ingest.
INGEST_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
#: The media type of :meth:`Metrics.exposition`.
CONTENT_TYPE = CONTENT_TYPE_LATEST
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_BY_ASSISTANT: weakref.WeakKeyDictionary[Assistant, Metrics] = weakref.WeakKeyDictionary()


class Metrics:
    """The metrics of one assistant, in a registry of their own (not the process-wide default one)."""

    def __init__(self, assistant: Assistant) -> None:
        self.registry = CollectorRegistry()
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "assistant_http_requests", "HTTP requests answered, by method, route template and status.", labels,
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "assistant_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by method, route template and status.",
            labels, buckets=REQUEST_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.answers = Counter(
            "assistant_answers", "Questions answered, by outcome: 'answered' or 'refused' (the sources do not say).",
            ["outcome"], registry=self.registry,
        )  # fmt: skip
        self.cache_hits = Counter(
            "assistant_answer_cache_hits", "Answers served from the answer cache.", registry=self.registry
        )
        self.ingest_runs = Counter(
            "assistant_ingest_runs", "Ingest runs, by result: 'ok' or 'failed'.", ["result"], registry=self.registry
        )
        self.ingest_seconds = Histogram(
            "assistant_ingest_duration_seconds", "How long each ingest run took.", buckets=INGEST_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.files_skipped = Counter(
            "assistant_ingest_files_skipped",
            "Files ingest runs skipped (unreadable, too large, duplicates, unsupported); each run counts its own.",
            registry=self.registry,
        )
        for outcome in ("answered", "refused"):  # present from the first scrape, so rates start at zero
            self.answers.labels(outcome)
        for result in ("ok", "failed"):
            self.ingest_runs.labels(result)
        self.registry.register(_IndexSize(assistant))

    @classmethod
    def of(cls, assistant: Assistant) -> Metrics:
        """The metrics of ``assistant``: created, and its ``ask`` and ``ingest`` wrapped, on the first call."""
        metrics = _BY_ASSISTANT.get(assistant)
        if metrics is None:
            metrics = _BY_ASSISTANT[assistant] = cls(assistant)
            metrics._wrap(assistant)
        return metrics

    def _wrap(self, assistant: Assistant) -> None:
        ask, ingest = assistant.ask, assistant.ingest

        @functools.wraps(ask)
        def counted_ask(*args: Any, **kwargs: Any) -> Answer:
            answer = ask(*args, **kwargs)
            self.observe_answer(answer)
            return answer

        @functools.wraps(ingest)
        def counted_ingest(*args: Any, **kwargs: Any) -> IngestReport:
            started = time.perf_counter()
            try:
                report = ingest(*args, **kwargs)
            except Exception:
                self.ingest_runs.labels("failed").inc()
                self.ingest_seconds.observe(time.perf_counter() - started)
                raise
            self.observe_ingest(report)
            return report

        assistant.ask = counted_ask  # type: ignore[method-assign]
        assistant.ingest = counted_ingest  # type: ignore[method-assign]

    def observe_answer(self, answer: Answer) -> None:
        """Count one answer: its outcome, and whether it came from the answer cache."""
        self.answers.labels("refused" if answer.refused else "answered").inc()
        if "cache" in answer.timings_ms:  # the facade times a cached answer as one 'cache' stage
            self.cache_hits.inc()

    def observe_ingest(self, report: IngestReport) -> None:
        """Count one finished ingest run."""
        self.ingest_runs.labels("ok").inc()
        self.ingest_seconds.observe(report.seconds)
        self.files_skipped.inc(len(report.skipped))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request; a method outside the standard ones is counted as ``OTHER``."""
        labels = (method if method in _METHODS else "OTHER", route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)


class _IndexSize:
    """Collects the index's size at scrape time from :meth:`Assistant.health`."""

    def __init__(self, assistant: Assistant) -> None:
        self._assistant = weakref.ref(assistant)  # the registry must not keep the assistant alive

    def collect(self) -> Iterator[Metric]:
        assistant = self._assistant()
        if assistant is None:
            return
        health = assistant.health()
        yield GaugeMetricFamily(
            "assistant_passages_indexed",
            "Passages served from the index.",
            value=health["chunks"],
        )
        yield GaugeMetricFamily("assistant_sources_indexed", "Sources served from the index.", value=health["sources"])


def route_template(scope: dict, routes: list) -> str:
    """The template of the route that served (or would serve) a request: ``/api/ask``, ``/gradio_api/file={path}``.

    Requests refused before routing (a missing key, a full rate, a body too large) are matched against the
    app's routes; a path no route matches is ``unmatched``.
    """
    route = scope.get("route")
    if route is None:
        from starlette.routing import Match

        route = next((r for r in routes if r.matches(scope)[0] is Match.FULL), None)
    path = getattr(route, "path", None)
    if path is None:
        return "unmatched"
    if hasattr(route, "routes") and not hasattr(route, "endpoint"):  # a mount that matched none of its routes
        return f"{path}/{{path}}"
    return path or "/"


class RequestMetrics:
    """ASGI layer that counts and times every HTTP request by method, route template and status.

    Mounted outermost, so refusals by the access and body-size layers are counted too. The time runs to the
    end of the response body, which for a stream is the end of the stream.
    """

    def __init__(self, app: Any, metrics: Metrics, routes: list) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the app's own list, so routes added after this layer are known too

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what a client sees if the app fails before it starts a response

        async def timed_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe_request(scope["method"], route_template(scope, self.routes), status, seconds)
