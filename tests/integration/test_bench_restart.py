"""``assistant bench --restart``: restart to first answer on a built index, with each new process's own RSS."""

from __future__ import annotations

import json

import pytest

from assistant import cli

pytestmark = pytest.mark.integration


def test_restart_times_new_processes_on_the_built_index(real_assistant, real_settings, tmp_path, capsys):
    sources, index = real_settings.paths.sources_dir, real_settings.paths.index_dir
    args = ["bench", "--restart", "2", "--sources", str(sources), "--index", str(index), "--out", str(tmp_path)]
    assert cli.main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "restart.json").read_text())
    assert len(printed["runs"]) == 2 and printed["first_s"] > 0 and printed["later_median_s"] > 0
    assert 50 < printed["peak_rss_mb"] < 4000, "the child's own peak RSS, in MB"
    assert (index / "lexical").is_dir(), "the first restart left a saved BM25 index for the next"
