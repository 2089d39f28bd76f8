"""Issue 12 part 2: a running ``assistant serve`` follows its sources folder (copy, edit, delete).

The server is an open install (no keys at all), as a single team would run it; it also shows that document
management stays off there: an open install must not let any visitor change the documents.
"""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from tests.conftest import ARTICLE
from tests.integration.servers import client_from, gradio_join
from tests.integration.test_security import assistant_serve

pytestmark = pytest.mark.integration

QUESTION = "How many days of paid leave do new staff get per year?"


def leave_policy(days: int) -> str:
    return (
        "---\ntitle: Annual leave\n---\n# Annual leave\n\n"
        f"New staff get {days} days of paid leave per year. Leave requests go to the line manager at least two "
        "weeks ahead.\n\nUnused leave can be carried over until the end of March.\n"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with assistant_serve(tmp_path_factory.mktemp("watch"), ASSISTANT_SECURITY__RATE_LIMIT_PER_MINUTE="0") as running:
        yield running


def wait_for(http: httpx.Client, check, timeout_s: float = 10.0) -> tuple[float, dict]:
    """Ask until ``check(answer)`` holds; return the seconds it took and the answer."""
    started = time.perf_counter()
    while True:
        answer = http.post("/api/ask", json={"question": QUESTION}).json()
        elapsed = time.perf_counter() - started
        if check(answer) or elapsed > timeout_s:
            return elapsed, answer
        time.sleep(0.2)


def cites(answer: dict, name: str) -> bool:
    return any(c["source"] == name for c in answer.get("citations", []))


def test_copy_edit_and_delete_in_sources_are_followed(server, tmp_path, record_property):
    sources = server.root / "sources"
    draft = tmp_path / "annual-leave.md"
    draft.write_text(leave_policy(25))
    with client_from("127.0.13.11", server.url) as http:
        before = http.get("/healthz").json()["ingest"]
        assert before["watching"] is True and before["last_ingest"]
        assert not cites(http.post("/api/ask", json={"question": QUESTION}).json(), "annual-leave.md")

        shutil.copy(draft, sources / "annual-leave.md")
        copied_s, answer = wait_for(http, lambda a: cites(a, "annual-leave.md"))
        record_property("copy_to_cited_answer_s", round(copied_s, 2))
        print(f"\ncopy into sources/ to first cited answer: {copied_s:.2f} s")
        assert copied_s < 10 and "25 days" in answer["answer"], answer
        health = http.get("/healthz").json()
        assert health["sources"] == 2 and health["ingest"]["added"] == 1
        assert health["ingest"]["last_ingest"] >= before["last_ingest"]

        (sources / "annual-leave.md").write_text(leave_policy(30))
        edited_s, answer = wait_for(http, lambda a: "30 days" in a["answer"])
        print(f"edit to updated answer: {edited_s:.2f} s")
        assert edited_s < 10 and "25 days" not in answer["answer"], answer
        assert http.get("/healthz").json()["ingest"]["updated"] == 1

        (sources / "annual-leave.md").unlink()
        deleted_s, answer = wait_for(http, lambda a: not cites(a, "annual-leave.md"))
        print(f"delete to answer without it: {deleted_s:.2f} s")
        assert deleted_s < 10 and "30 days" not in answer["answer"], answer
        health = http.get("/healthz").json()
        assert health["sources"] == 1 and health["ingest"]["removed"] == 1
        other = http.post("/api/ask", json={"question": "Which Xiaomi executive announced the 10,000 stores goal?"})
        assert "Lu Weibing" in other.json()["answer"]


def test_a_bad_file_dropped_in_is_skipped_and_breaks_nothing(server):
    sources = server.root / "sources"
    with client_from("127.0.13.12", server.url) as http:
        (sources / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
        deadline = time.time() + 10
        while http.get("/healthz").json()["ingest"]["skipped"] != 1:
            assert time.time() < deadline
            time.sleep(0.2)
        assert http.get("/healthz").json()["sources"] == 1
        (sources / "broken.pdf").unlink()


def test_hidden_and_temporary_files_are_ignored(server):
    sources = server.root / "sources"
    with client_from("127.0.13.13", server.url) as http:
        time.sleep(1.5)  # whatever an earlier test changed is indexed by now
        last = http.get("/healthz").json()["ingest"]["last_ingest"]
        (sources / ".draft.md.swp").write_text(leave_policy(99))
        (sources / ".upload-123.tmp").write_text(leave_policy(99))
        time.sleep(2.5)
        assert http.get("/healthz").json()["ingest"]["last_ingest"] == last
        answer = http.post("/api/ask", json={"question": QUESTION}).json()
        assert "99 days" not in answer["answer"]
    for name in (".draft.md.swp", ".upload-123.tmp"):
        (sources / name).unlink()


def test_the_ui_lists_sources_as_they_are_now(server):
    sources = server.root / "sources"
    (sources / "annual-leave.md").write_text(leave_policy(25))
    try:
        with client_from("127.0.13.14", server.url) as http:
            deadline = time.time() + 10
            while http.get("/healthz").json()["sources"] != 2:
                assert time.time() < deadline
                time.sleep(0.2)
            config = http.get("/config").json()
            refresh = next(d for d in config["dependencies"] if any(t[1] == "load" for t in d["targets"]))
            done = gradio_join(http, refresh["id"], [], trigger_id=refresh["targets"][0][0])
        listed = done["output"]["data"][-1]
        assert "Annual leave" in str(listed) and ARTICLE.name in str(listed)
    finally:
        (sources / "annual-leave.md").unlink()


def test_document_management_is_off_without_admin_keys(server):
    with client_from("127.0.13.21", server.url) as http:
        responses = [
            http.get("/api/documents"),
            http.post("/api/documents", files={"file": ("x.md", b"# X\n\nSome text about x.\n")}),
            http.delete(f"/api/documents/{ARTICLE.name}"),
            http.get("/api/feedback"),
        ]
        config = http.get("/config").json()
    for response in responses:
        assert response.status_code == 403, response.text
        assert "ASSISTANT_SECURITY__ADMIN_KEYS" in response.json()["error"]["message"]
    assert (server.root / "sources" / ARTICLE.name).exists() and not (server.root / "sources" / "x.md").exists()
    assert not any(c["type"] == "tabitem" for c in config["components"])
