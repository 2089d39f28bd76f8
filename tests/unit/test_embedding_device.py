"""``embedding.device``: the setting, the ONNX Runtime providers it picks, its clear error, the fingerprint."""

from __future__ import annotations

import onnxruntime as ort
import pytest
import torch

from assistant import cli
from assistant.config import EmbeddingSettings, Settings
from assistant.embedding_onnx import execution_providers
from assistant.embeddings import SentenceEmbedder, load_model
from assistant.errors import ConfigError

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def test_device_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("ASSISTANT_EMBEDDING__DEVICE", "cuda")
    assert Settings(_env_file=None).embedding.device == "cuda"
    monkeypatch.setenv("ASSISTANT_EMBEDDING__DEVICE", "tpu")
    with pytest.raises(ValueError):
        Settings(_env_file=None)


def test_a_cuda_index_has_its_own_fingerprint_and_cpu_ones_are_unchanged():
    cpu = Settings(_env_file=None)
    cuda = Settings(_env_file=None, embedding={"device": "cuda"})
    assert cuda.collection_name != cpu.collection_name
    assert Settings(_env_file=None, embedding={"device": "cpu"}).collection_name == cpu.collection_name


def test_cpu_uses_the_cpu_provider():
    assert execution_providers("cpu") == ["CPUExecutionProvider"]


def test_cuda_prefers_the_cuda_provider_when_installed(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert execution_providers("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has the CUDA provider")
def test_cuda_without_the_provider_says_how_to_get_it():
    with pytest.raises(ConfigError) as caught:
        execution_providers("cuda")
    message = caught.value.message
    assert "onnxruntime-gpu" in message and ".[gpu]" in message and "DEVICE=cpu" in message


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has the CUDA provider")
def test_loading_fails_before_exporting_anything(tmp_path):
    with pytest.raises(ConfigError, match="CUDA provider"):
        SentenceEmbedder.from_settings(EmbeddingSettings(device="cuda"), tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists(), "no graph is exported for a device that cannot run it"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this PyTorch sees a GPU")
def test_the_torch_backend_on_cuda_without_a_gpu_says_what_is_missing():
    with pytest.raises(ConfigError) as caught:
        load_model(EmbeddingSettings(backend="torch", device="cuda"))
    message = caught.value.message
    assert "CUDA build of PyTorch" in message and "DEVICE=cpu" in message


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has the CUDA provider")
def test_the_cli_reports_it_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ASSISTANT_EMBEDDING__DEVICE", "cuda")
    monkeypatch.setenv("ASSISTANT_PATHS__CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "sources").mkdir()
    code = cli.main(["ingest", "--sources", str(tmp_path / "sources"), "--index", str(tmp_path / "index")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error: embedding.device=cuda needs"), err
