"""The learned answer models: which sentence answers, and whether the sources answer at all.

Three logistic models over the features of :mod:`assistant.answer.features` and one cross-encoder, all
trained and calibrated by ``scripts/train_answerer.py`` on disjoint splits (see
``assistant/models/MODEL_CARD.md``):

1. the *shortlist* model ranks every candidate sentence on cheap features;
2. the cross-encoder (int8 ONNX) reads the question with each shortlisted sentence;
3. the *sentence* model ranks candidates on both, and the *answerability* model says whether the best
   of them answers, refused below a threshold chosen on the calibration split.

The logistic models ship as one JSON file of coefficients, which names the ONNX file and its hash;
loading needs no download and no machine-learning library, and a test checks both hashes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from assistant.answer.features import BASE_FEATURES, CROSS_CANDIDATES, QUESTION_FEATURES, SENTENCE_FEATURES
from assistant.answer.reranker import CrossEncoder
from assistant.errors import AssistantError

MODEL_FILE = "answerer.json"


@dataclass(slots=True)
class Logistic:
    """A standardised logistic model: ``sigmoid(((x - mean) / scale) @ coef + intercept)``."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def from_dict(cls, data: dict, expected: tuple[str, ...]) -> Logistic:
        """Build from the JSON form, checking it was trained on the features this code computes."""
        if tuple(data["features"]) != expected:
            raise AssistantError(
                "the answer model was trained on other features; retrain it (scripts/train_answerer.py)"
            )
        return cls(
            tuple(data["features"]), np.asarray(data["mean"]), np.asarray(data["scale"]),
            np.asarray(data["coef"]), float(data["intercept"]),
        )  # fmt: skip

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "features": list(self.features),
            "mean": self.mean.round(8).tolist(),
            "scale": self.scale.round(8).tolist(),
            "coef": self.coef.round(8).tolist(),
            "intercept": round(self.intercept, 8),
        }

    def probability(self, x: np.ndarray) -> np.ndarray:
        """P(positive) for each row of ``x`` (or for one row)."""
        z = ((np.atleast_2d(x) - self.mean) / self.scale) @ self.coef + self.intercept
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        return p if np.ndim(x) == 2 else p[:1]


@dataclass(slots=True)
class AnswerModels:
    """The sentence model, the answerability model and the thresholds chosen on the calibration split.

    Attributes:
        shortlist: P(this sentence holds the answer) on the base features: who the reranker reads.
        reranker: The cross-encoder.
        sentence: P(this sentence holds the answer), the reranker's score included.
        answerable: P(the retrieved evidence answers the question).
        threshold: Refuse below this answerability (chosen on the calibration split).
        second_ratio: A fact question also gets the runner-up sentence when its probability is at
            least this share of the best one's (chosen on the calibration split).
        point_ratio: An explanation or list gets further points down to this share of the best.
        cross_candidates: How many of the shortlist the cross-encoder reads: the fewest that answer the
            calibration split as well as all :data:`CROSS_CANDIDATES` (the cross-encoder is most of an
            answer's time).

    """

    shortlist: Logistic
    reranker: CrossEncoder | None
    sentence: Logistic
    answerable: Logistic
    threshold: float
    second_ratio: float
    point_ratio: float
    cross_candidates: int = CROSS_CANDIDATES
    reranker_file: dict | None = None

    @classmethod
    def from_dict(cls, data: dict, folder: Path | None = None) -> AnswerModels:
        """Build from the JSON form; the reranker graph is read from ``folder`` (package data by default)."""
        graph = data["reranker"]
        count = int(data.get("cross_candidates", CROSS_CANDIDATES))
        if not 1 <= count <= CROSS_CANDIDATES:
            raise AssistantError(f"cross_candidates must be between 1 and {CROSS_CANDIDATES}, not {count}")
        return cls(
            Logistic.from_dict(data["shortlist"], BASE_FEATURES),
            _load_reranker(graph, folder),
            Logistic.from_dict(data["sentence"], SENTENCE_FEATURES),
            Logistic.from_dict(data["answerable"], QUESTION_FEATURES),
            float(data["threshold"]), float(data["second_ratio"]), float(data["point_ratio"]), count, graph,
        )  # fmt: skip

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "shortlist": self.shortlist.to_dict(),
            "reranker": self.reranker_file,
            "sentence": self.sentence.to_dict(),
            "answerable": self.answerable.to_dict(),
            "threshold": round(self.threshold, 6),
            "second_ratio": round(self.second_ratio, 6),
            "point_ratio": round(self.point_ratio, 6),
            "cross_candidates": self.cross_candidates,
        }

    @classmethod
    def load(cls, path: Path | None = None) -> AnswerModels:
        """Load the shipped models (package data), or the file at ``path``.

        Raises:
            AssistantError: The file is missing or not a model file.

        """
        try:
            folder = Path(str(resources.files("assistant.models"))) if path is None else Path(path).parent
            text = (folder / MODEL_FILE if path is None else Path(path)).read_text(encoding="utf-8")
            return cls.from_dict(json.loads(text), folder)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AssistantError(f"cannot load the answer model: {exc}") from None


def _load_reranker(graph: dict, folder: Path | None) -> CrossEncoder:
    from assistant.embeddings import BUNDLED_PREFIX, model_path

    folder = folder or Path(str(resources.files("assistant.models")))
    tokenizer = model_path(f"{BUNDLED_PREFIX}all-MiniLM-L6-v2") / "tokenizer.json"
    return CrossEncoder(folder / graph["file"], tokenizer, labelled=graph.get("reads") == "labelled")
