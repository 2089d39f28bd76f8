"""The learned answer layer: shipped weights, question analysis, candidate features, selection."""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources

import numpy as np
import pytest

from assistant.answer.compose import focus_span, select
from assistant.answer.evidence import Evidence, SentenceRef
from assistant.answer.features import (
    BASE_FEATURES,
    CROSS_CANDIDATES,
    QUESTION_FEATURES,
    SENTENCE_FEATURES,
    CandidateTable,
)
from assistant.answer.question import AnswerType, QuestionForm, analyse, is_english, question_form
from assistant.answer.scorer import AnswerModels, Logistic
from assistant.errors import AssistantError
from assistant.retrieval import Passage
from assistant.text import terms


def test_shipped_weights_match_the_hashes_on_the_model_card():
    models = resources.files("assistant.models")
    payload = models.joinpath("answerer.json").read_bytes()
    card = models.joinpath("MODEL_CARD.md").read_text(encoding="utf-8")
    digest = re.search(r"sha256 of `answerer.json`\*\*: `([0-9a-f]{64})`", card).group(1)
    assert hashlib.sha256(payload).hexdigest() == digest
    graph = json.loads(payload)["reranker"]
    onnx = models.joinpath(graph["file"]).read_bytes()
    assert hashlib.sha256(onnx).hexdigest() == graph["sha256"] and f"`{graph['sha256']}`" in card
    assert len(onnx) <= 25_000_000  # int8, small enough to ship


def test_reranker_prefers_the_sentence_that_answers():
    reranker = AnswerModels.load().reranker
    logits = reranker.score(
        "How many days of annual leave do full-time staff get?",
        ["Full-time employees receive 25 days of paid time off per year.", "The office closes at 6 pm on Fridays."],
    )
    assert logits.shape == (2,) and logits[0] > logits[1]


def test_a_pairs_score_does_not_depend_on_what_else_was_shortlisted():
    reranker = AnswerModels.load().reranker
    question = "How many days of annual leave do full-time staff get?"
    answer = "Full-time employees receive 25 days of paid time off per year."
    others = ["The office closes at 6 pm on Fridays.", "Part-time staff get leave pro rata, rounded up to half a day."]
    alone = reranker.score(question, [answer])[0]
    assert reranker.score(question, [answer, *others])[0] == alone
    assert reranker.score(question, [*others, answer])[2] == alone


def test_shipped_models_load_and_were_trained_on_these_features():
    models = AnswerModels.load()
    assert models.sentence.features == SENTENCE_FEATURES and models.answerable.features == QUESTION_FEATURES
    assert 0 < models.threshold < 1 and 0 < models.second_ratio <= 1 and 0 < models.point_ratio <= 1


def test_a_model_for_other_features_is_refused_with_a_clear_error(tmp_path):
    data = AnswerModels.load().to_dict()
    data["shortlist"]["features"] = ["something", "else"]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    with pytest.raises(AssistantError, match="retrain"):
        AnswerModels.load(path)


def test_the_models_say_how_their_cross_encoder_reads(tmp_path):
    assert not AnswerModels.load().reranker.labelled  # the shipped one reads sentences alone
    data = AnswerModels.load().to_dict()
    data["reranker"]["reads"] = "labelled"
    (tmp_path / "m.json").write_text(json.dumps(data))
    (tmp_path / data["reranker"]["file"]).write_bytes(
        resources.files("assistant.models").joinpath(data["reranker"]["file"]).read_bytes()
    )
    assert AnswerModels.load(tmp_path / "m.json").reranker.labelled


@pytest.mark.parametrize("count", [0, CROSS_CANDIDATES + 1])
def test_a_cross_candidate_count_the_training_never_scored_is_refused(tmp_path, count):
    data = AnswerModels.load().to_dict()
    data["cross_candidates"] = count
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    with pytest.raises(AssistantError, match="cross_candidates must be between 1 and"):
        AnswerModels.load(path)


def test_the_shortlist_is_the_best_count_candidates_by_the_base_model():
    table = CandidateTable.__new__(CandidateTable)
    assert table.shortlist(np.array([0.1, 0.9, 0.5, 0.7]), 2) == [1, 3]
    assert table.shortlist(np.array([0.1, 0.9]), 3) == [1, 0]


def test_logistic_is_a_standardised_sigmoid():
    model = Logistic(("a", "b"), np.array([1.0, 0.0]), np.array([2.0, 1.0]), np.array([1.0, -1.0]), 0.5)
    x = np.array([[3.0, 1.0], [1.0, 0.0]])
    expected = 1 / (1 + np.exp(-(np.array([1.0 - 1.0, 0.0]) + 0.5)))
    assert np.allclose(model.probability(x), expected)
    assert model.probability(x[0]).shape == (1,)


@pytest.mark.parametrize(
    "question",
    [
        "How many days of leave do I get?",
        "Can I work from Spain?",
        "SU7 price?",
        "Xiaomi SU7 Ultra Nürburgring lap time?",
    ],
)
def test_english_questions_pass(question):
    assert is_english(question)


@pytest.mark.parametrize(
    "question",
    [
        "Wie viele Urlaubstage habe ich pro Jahr?",
        "¿Cuántos coches envió Xiaomi a Francia?",
        "Combien de voitures Xiaomi a-t-il envoyées en France?",
        "小米向法国运送了多少辆汽车？",
        "Сколько машин Xiaomi отправила во Францию?",
    ],
)
def test_questions_in_other_languages_are_recognised(question):
    assert not is_english(question)


@pytest.mark.parametrize(
    ("question", "form"),
    [
        ("How many days of leave do I get?", QuestionForm.FACT),
        ("Can I expense a taxi after 10 pm?", QuestionForm.YES_NO),
        ("Why did the deploy fail?", QuestionForm.EXPLAIN),
        ("How do I restore a backup?", QuestionForm.EXPLAIN),
        ("What are the steps to request leave?", QuestionForm.EXPLAIN),
        ("Which countries did Xiaomi ship to?", QuestionForm.LIST),
    ],
)
def test_question_forms(question, form):
    assert question_form(question) is form


def test_salient_terms_are_the_names_and_numbers_asked_about():
    q = analyse("What did Tesla sell in 2019?", [])
    assert q.salient == terms("Tesla 2019")


def _ref(passage, position, text, start, vector):
    return SentenceRef(
        passage, position, text, start, start + len(text), np.asarray(vector, float), frozenset(terms(text))
    )


def _evidence():
    passages = [
        Passage("faq:0", "faq.md", "FAQ", "", 0, 200, dense=0.6, lexical=3.0),
        Passage("faq:1", "faq.md", "FAQ", "", 200, 400, dense=0.5, lexical=2.0),
    ]
    sentences = [
        [
            _ref(0, 0, "How long does the warranty last?", 0, [1, 0, 0]),
            _ref(0, 1, "The standard warranty lasts 2 years from the date of purchase.", 34, [0.8, 0.6, 0]),
        ],
        [_ref(1, 0, "Commercial use limits the warranty to 6 months.", 200, [0.7, 0, 0.714])],
    ]
    return Evidence(passages, sentences)


def test_questions_in_the_text_are_not_candidates_but_label_the_answer_below():
    q = analyse("How long is the warranty?", [])
    table = CandidateTable(q, _evidence(), np.array([1.0, 0.0, 0.0]))
    assert [r.text for r in table.refs] == [
        "The standard warranty lasts 2 years from the date of purchase.",
        "Commercial use limits the warranty to 6 months.",
    ]
    col = SENTENCE_FEATURES.index("cos_heading")
    assert table.matrix[0, col] == pytest.approx(1.0) and table.matrix[1, col] == 0.0
    assert table.matrix.shape == (2, len(BASE_FEATURES))
    table.add_cross([1], np.array([2.5]))
    assert table.matrix.shape == (2, len(SENTENCE_FEATURES))
    cross = table.matrix[:, SENTENCE_FEATURES.index("cross")]
    assert cross[1] == 2.5 and cross[0] < 2.5  # unread candidates rank below every read one


def test_a_labelled_cross_encoder_reads_a_sentence_under_its_heading_or_faq_question():
    evidence = _evidence()
    evidence.sentences[1] = [
        _ref(1, 0, "## Commercial use", 200, [0, 0, 1]),
        _ref(1, 1, "Commercial use limits the warranty to 6 months.", 218, [0.7, 0, 0.714]),
        _ref(1, 2, "Claims go to the shop.", 268, [0, 1, 0]),
        _ref(1, 3, "Receipts are kept by the shop.", 291, [0, 1, 0]),
        _ref(1, 4, "Refunds take 5 days.", 322, [0, 1, 0]),
        _ref(1, 5, "Exchanges are free.", 343, [0, 1, 0]),
    ]
    table = CandidateTable(analyse("How long is the warranty?", []), evidence, np.array([1.0, 0.0, 0.0]))
    everyone = list(range(len(table.refs)))
    assert table.reader_texts(everyone, labelled=False) == [r.text for r in table.refs]
    texts = table.reader_texts(everyone, labelled=True)
    assert texts[:3] == [
        "How long does the warranty last? The standard warranty lasts 2 years from the date of purchase.",
        "## Commercial use",  # a heading has nothing above it in its passage
        "Commercial use: Commercial use limits the warranty to 6 months.",
    ]
    assert texts[-1] == "Exchanges are free."  # further below the heading than it reaches


def test_fact_question_gets_one_sentence_unless_the_runner_up_is_close():
    q = analyse("How long is the warranty?", [])
    table = CandidateTable(q, _evidence(), np.array([1.0, 0.0, 0.0]))
    models = AnswerModels.load()
    models.second_ratio = 0.9
    assert len(select(table, np.array([0.9, 0.3]), models)) == 1
    assert len(select(table, np.array([0.9, 0.85]), models)) == 2


def test_near_duplicates_are_not_repeated():
    q = analyse("Why does the warranty differ?", [])
    evidence = _evidence()
    evidence.sentences[1][0].vector = evidence.sentences[0][1].vector.copy()
    table = CandidateTable(q, evidence, np.array([1.0, 0.0, 0.0]))
    models = AnswerModels.load()
    models.point_ratio = 0.1
    assert len(select(table, np.array([0.9, 0.8]), models)) == 1


def test_focus_is_the_asked_number_not_one_from_the_question():
    sentence = _ref(0, 0, "In 2024 the warranty lasts 2 years.", 100, [1, 0, 0])
    assert focus_span(AnswerType.NUMBER, sentence, "How many years does the 2024 warranty last?") == (127, 128)
    assert focus_span(AnswerType.OTHER, sentence, "What about it?") is None
