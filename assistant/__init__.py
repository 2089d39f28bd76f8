"""The assistant: grounded, cited answers from a folder of source articles.

``from assistant import Assistant`` is the public entry point; heavy modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistant.answer.types import Answer, Citation
    from assistant.config import Settings
    from assistant.facade import Assistant

__all__ = ["Answer", "Assistant", "Citation", "Settings"]

_LAZY = {
    "Assistant": "assistant.facade",
    "Answer": "assistant.answer.types",
    "Citation": "assistant.answer.types",
    "Settings": "assistant.config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'assistant' has no attribute {name!r}")
