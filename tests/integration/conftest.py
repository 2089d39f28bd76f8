"""One real Assistant (bundled model, embedded Chroma in a temp folder) shared by the session."""

from __future__ import annotations

import shutil

import pytest

from assistant.config import Settings
from assistant.facade import Assistant
from tests.conftest import ARTICLE


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("real")
    (root / "sources").mkdir()
    shutil.copy(ARTICLE, root / "sources" / ARTICLE.name)
    return Settings(sources_dir=root / "sources", index_dir=root / "index", _env_file=None)


@pytest.fixture(scope="session")
def real_assistant(real_settings) -> Assistant:
    return Assistant.load(real_settings)
