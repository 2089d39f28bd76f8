"""/metrics scraped from a real server and read by Prometheus's own text-format parser."""

from __future__ import annotations

import shutil

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from assistant.api.server import create_app
from assistant.config import Settings
from assistant.facade import Assistant
from assistant.metrics import Metrics
from assistant.store import PassageStore, make_client
from tests.conftest import ARTICLE
from tests.integration.servers import free_port, run_app

pytestmark = pytest.mark.integration

ANSWERABLE = "Which Xiaomi executive announced the goal of 10,000 stores?"
UNANSWERABLE = "What is the boiling point of mercury?"


def scrape(client: httpx.Client, **headers: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, keyed by sample name and sorted labels, as the Prometheus parser reads them."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def assistant(real_assistant, tmp_path_factory) -> Assistant:
    """An assistant of its own (its counters start at zero), whose sources hold one file ingest must skip."""
    root = tmp_path_factory.mktemp("metrics")
    sources = root / "sources"
    sources.mkdir()
    shutil.copy(ARTICLE, sources / ARTICLE.name)
    (sources / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF")
    settings = Settings(sources_dir=sources, index_dir=root / "index", _env_file=None)
    bot = Assistant(settings, real_assistant.embedder, PassageStore(make_client(settings), settings.collection_name))
    Metrics.of(bot)  # as `serve` does, before the first ingest
    bot.ingest()
    return bot


def test_metrics_count_requests_answers_cache_hits_ingests_and_the_index(assistant):
    with run_app(create_app(assistant, with_ui=False), free_port()) as url, httpx.Client(base_url=url) as client:
        before = scrape(client)
        for question in (ANSWERABLE, ANSWERABLE, UNANSWERABLE):  # the second one comes from the answer cache
            assert client.post("/api/ask", json={"question": question}).status_code == 200
        assert client.post("/api/ask", json={"question": ""}).status_code in (400, 422)
        assert client.get("/api/no-such-route").status_code == 404
        after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"method": "POST", "route": "/api/ask", "status": "200"}
    assert grew("assistant_http_requests_total", **ok) == 3
    assert grew("assistant_http_request_duration_seconds_count", **ok) == 3
    assert grew("assistant_http_request_duration_seconds_bucket", **ok, le="+Inf") == 3
    assert grew("assistant_http_request_duration_seconds_sum", **ok) > 0
    assert grew("assistant_http_requests_total", method="GET", route="/api/{rest:path}", status="404") == 1
    assert value(after, "assistant_http_requests_total", method="GET", route="/metrics", status="200") >= 1
    assert not [key for key in after if ("route", "/api/no-such-route") in key[1]], "raw paths are never labels"

    assert grew("assistant_answers_total", outcome="answered") == 2
    assert grew("assistant_answers_total", outcome="refused") == 1
    assert grew("assistant_answer_cache_hits_total") == 1

    assert value(after, "assistant_ingest_runs_total", result="ok") == 1
    assert value(after, "assistant_ingest_duration_seconds_count") == 1
    assert value(after, "assistant_ingest_files_skipped_total") == 1  # broken.pdf
    assert value(after, "assistant_passages_indexed") == len(assistant.corpus) > 0
    assert value(after, "assistant_sources_indexed") == 1


def test_with_api_keys_metrics_need_an_api_key_and_the_widget_key_is_refused(assistant):
    settings = assistant.settings.model_copy(deep=True)
    settings.security.api_keys = "ops-key"
    settings.security.widget_key = "widget-key"
    settings.security.allowed_origins = "https://site.example"
    app = create_app(assistant, settings, with_ui=False)
    with run_app(app, free_port()) as url, httpx.Client(base_url=url) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        widget = {"Authorization": "Bearer widget-key", "Origin": "https://site.example"}
        assert client.get("/metrics", headers=widget).status_code == 401
        assert client.post("/api/ask", json={"question": ANSWERABLE}, headers=widget).status_code == 200
        samples = scrape(client, Authorization="Bearer ops-key")
    assert value(samples, "assistant_http_requests_total", method="GET", route="/metrics", status="401") >= 3
