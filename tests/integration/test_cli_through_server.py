"""`assistant ask` with ASSISTANT_SERVER_URL: a running server answers; when it is unreachable, the CLI does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from assistant.api.server import create_app
from assistant.api.sources import source_url
from assistant.ui.cards import passage_url
from tests.integration.servers import free_port, run_app

pytestmark = pytest.mark.integration

QUESTION = "Which Xiaomi executive announced the goal of 10,000 stores?"


def ask(tmp_path, server_url: str, *args: str, sources=None, index=None, **env: str) -> subprocess.CompletedProcess:
    """The CLI in a new process; by default over an empty sources folder, so only a server can answer."""
    empty = tmp_path / "empty-sources"
    empty.mkdir(exist_ok=True)
    variables = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    variables.update(
        HF_HUB_OFFLINE="1", ASSISTANT_SERVER_URL=server_url, ASSISTANT_SOURCES_DIR=str(sources or empty),
        ASSISTANT_INDEX_DIR=str(index or tmp_path / "no-index"), **env,
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "ask", QUESTION, *args],
        capture_output=True, text=True, env=variables, timeout=300,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def server(real_assistant):
    with run_app(create_app(real_assistant, with_ui=False), free_port()) as url:
        yield url


def test_the_running_server_answers(real_assistant, server, tmp_path):
    result = ask(tmp_path, server, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    data = json.loads(result.stdout)
    expected = real_assistant.ask(QUESTION).to_dict()
    assert data["answer"] == expected["answer"] and "Lu Weibing" in data["answer"]
    assert data["citations"] == [{**c, "open_url": passage_url(c, source_url)} for c in expected["citations"]]
    assert not (tmp_path / "no-index").exists(), "answered by the server: no index was opened here"


def test_human_output_comes_from_the_server_answer_too(server, tmp_path):
    result = ask(tmp_path, server)
    assert result.returncode == 0, result.stderr
    assert "Lu Weibing" in result.stdout and "[1] " in result.stdout


def test_an_unreachable_server_falls_back_to_answering_here(real_settings, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = ask(tmp_path, dead, "--json", sources=real_settings.paths.sources_dir, index=tmp_path / "index")
    assert result.returncode == 0, result.stderr
    notes = result.stderr.strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith(f"note: the server at {dead} is unreachable"), result.stderr
    assert "Lu Weibing" in json.loads(result.stdout)["answer"]


def test_the_api_key_from_settings_is_sent(real_assistant, real_settings, tmp_path):
    settings = real_settings.model_copy(deep=True)
    settings.security.api_keys = "other-key, cli-key-123"
    with run_app(create_app(real_assistant, settings, with_ui=False), free_port()) as url:
        refused = ask(tmp_path, url, "--json", ASSISTANT_SECURITY__API_KEYS="wrong-key")
        accepted = ask(tmp_path, url, "--json", ASSISTANT_SECURITY__API_KEYS="cli-key-123")
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr, refused.stderr
    assert not (tmp_path / "no-index").exists(), "a refused key is an error, not a reason to answer here"
    assert accepted.returncode == 0, accepted.stderr
    assert "Lu Weibing" in json.loads(accepted.stdout)["answer"]


def test_bad_input_is_the_servers_422_and_exits_2(server, tmp_path):
    result = ask(tmp_path, server, "--history", '[{"role": "user", "content": "hi", "extra": 1}]')
    assert result.returncode == 2
    assert "HTTP 422" in result.stderr
