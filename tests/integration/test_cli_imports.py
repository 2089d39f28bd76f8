"""The CLI imports what a command needs: ``--help`` and ``ask`` through a server load no index, model or web stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from assistant.api.server import create_app
from tests.integration.servers import free_port, run_app

pytestmark = pytest.mark.integration

#: Packages only ingest, in-process answering or serving need.
HEAVY = {
    "bm25s", "chromadb", "numpy", "scipy", "sklearn", "onnxruntime", "tokenizers", "torch", "transformers",
    "sentence_transformers", "gradio", "fastapi", "uvicorn", "langchain_core", "langchain_chroma",
}  # fmt: skip
#: Runs the CLI in this process, then prints the top-level packages it loaded (as JSON, on stderr).
PROBE = """
import json, sys
from assistant.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
sys.exit(code)
"""


def loaded(*args: str, **env: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    variables.update(HF_HUB_OFFLINE="1", **env)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=variables, timeout=120
    )
    return result, set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_help_loads_no_settings_library_or_numpy():
    result, modules = loaded("--help")
    assert result.returncode == 0 and "ingest" in result.stdout
    assert not modules & (HEAVY | {"pydantic", "pydantic_settings", "httpx"}), sorted(modules & HEAVY)


def test_ask_through_a_server_loads_settings_and_http_only(real_assistant, tmp_path):
    with run_app(create_app(real_assistant, with_ui=False), free_port()) as url:
        result, modules = loaded(
            "ask", "Which Xiaomi executive announced the goal of 10,000 stores?", "--json",
            ASSISTANT_SERVER_URL=url, ASSISTANT_SOURCES_DIR=str(tmp_path), ASSISTANT_INDEX_DIR=str(tmp_path / "no"),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Lu Weibing" in json.loads(result.stdout)["answer"]
    assert "httpx" in modules and "pydantic_settings" in modules
    assert not modules & HEAVY, sorted(modules & HEAVY)
