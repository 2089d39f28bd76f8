"""Training discipline: out-of-fold cross-encoder scores, folds by document, choices made on calibration."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import train_answerer
import train_reranker


def test_each_fold_is_scored_by_a_model_trained_without_it(monkeypatch):
    pairs = [{"question": f"q{i}", "sentence": "s", "label": i % 2, "fold": i % 3} for i in range(30)]
    rows = [{"question": f"r{i}", "sentence": "s", "fold": i % 3} for i in range(12)]
    seen_by_model = []

    def fake_fit(train_pairs, **_):
        seen_by_model.append({p["fold"] for p in train_pairs})
        return len(seen_by_model) - 1, None, {"seconds": 0}

    monkeypatch.setattr(train_reranker, "fit", fake_fit)
    monkeypatch.setattr(train_reranker, "score", lambda model, _tok, held: [float(model)] * len(held))

    scores = train_reranker.cross_fit(pairs, rows, epochs=1)
    assert len(seen_by_model) == 3
    for row, model in zip(rows, scores, strict=True):
        assert row["fold"] not in seen_by_model[int(model)]
        assert seen_by_model[int(model)] == {0, 1, 2} - {row["fold"]}

    one = train_reranker.cross_fit(pairs, rows, epochs=1, only=1)
    assert [s is not None for s in one] == [r["fold"] == 1 for r in rows]


def test_folds_never_split_a_document_group():
    def example(dataset, article=""):
        return SimpleNamespace(item=SimpleNamespace(dataset=dataset, article=article))

    train = [example(c) for c in ("hr", "it", "news", "guide") for _ in range(3)]
    train += [example("squad", a) for a in ("Normans", "Huguenot", "Yuan", "Packet") for _ in range(5)]
    fold = train_answerer.assign_folds(train)
    group_folds: dict[str, set[int]] = {}
    for e in train:
        group_folds.setdefault(e.item.dataset + e.item.article, set()).add(fold[id(e)])
    assert all(len(f) == 1 for f in group_folds.values()), "a document group sits in one fold"
    assert set(fold.values()) == set(range(train_answerer.FOLDS))
    per_fold = {f: {g for g, fs in group_folds.items() if f in fs} for f in range(train_answerer.FOLDS)}
    assert all(len(groups) == 2 for groups in per_fold.values()), "one corpus and one article in each fold"


def test_the_cross_encoder_reads_the_fewest_candidates_no_calibration_dataset_loses_by(monkeypatch):
    expected = {  # count -> expected accuracy per calibration dataset
        1: {"faq": 0.60, "squad": 0.70},
        2: {"faq": 0.74, "squad": 0.69},  # squad loses more than the plateau: not enough
        3: {"faq": 0.716, "squad": 0.697},  # within the plateau everywhere
        4: {"faq": 0.72, "squad": 0.70},
        6: {"faq": 0.72, "squad": 0.70},
        8: {"faq": 0.72, "squad": 0.70},
        train_answerer.CROSS_CANDIDATES: {"faq": 0.72, "squad": 0.70},
    }
    models = SimpleNamespace(cross_candidates=None)
    monkeypatch.setattr(train_answerer, "read_cross", lambda _ex, m, count: setattr(m, "cross_candidates", count))
    monkeypatch.setattr(train_answerer, "_expected_by_dataset", lambda _g, m: expected[m.cross_candidates])
    count, values = train_answerer.choose_cross_candidates({"faq": [], "squad": []}, models)
    assert count == 3 and values == expected


def test_a_training_corpus_the_reused_cross_encoder_never_read_gets_its_own_scores():
    class Table:
        def __init__(self, question):
            self.question = SimpleNamespace(search_text=question)
            self.added = None

        def reader_texts(self, picked, *, labelled):
            return [f"s{i}" for i in picked]

        def add_cross(self, picked, values):
            self.added = list(values)

    def example(dataset, question):
        return SimpleNamespace(item=SimpleNamespace(dataset=dataset), table=Table(question), labels=np.array([1, 0]))

    old, new, held_out = example("hr", "q-old"), example("benefits", "q-new"), example("faq", "q-cal")
    picks = {id(e): [0, 1] for e in (old, new, held_out)}
    out_of_fold = {("q-old", "s0"): 5.0, ("q-old", "s1"): -5.0}
    graph = SimpleNamespace(labelled=False, score=lambda question, texts: np.full(len(texts), 1.0))
    train_answerer.add_cross_scores(
        [old, new, held_out], picks, {id(old), id(new)}, out_of_fold, graph, unseen=frozenset({"benefits"})
    )
    assert old.table.added == [5.0, -5.0], "a corpus the graph's folds covered reads its out-of-fold scores"
    assert new.table.added == [1.0, 1.0] and held_out.table.added == [1.0, 1.0]
    with pytest.raises(SystemExit, match="no out-of-fold score"):
        train_answerer.add_cross_scores([new], picks, {id(new)}, out_of_fold, graph)
    with pytest.raises(SystemExit, match="--unseen hr"):  # the graph's folds did read it
        train_answerer.add_cross_scores([old], picks, {id(old)}, out_of_fold, graph, unseen=frozenset({"hr"}))
