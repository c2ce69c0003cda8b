"""How well the tutor finds the right note, measured on the vault's own practice questions.

Each question's gold answer is the note it is written in. Its own block (stem, options, answer,
explanation) is indexed too, so it is always excluded from the search: otherwise searching the
stem would find the stem and every figure would be a trivial 1.0.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

from index.embedder import Embedder
from index.note import Question, QuestionRecord
from index.store import Hit

MODES = ("dense", "lexical", "hybrid")
Progress = Callable[[int, int], None]  # (done, total)


def own_section(record: QuestionRecord) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The `exclude` argument that hides a question's own block from retrieval."""
    return ((record.note, record.question.headings),)


def query_text(question: Question, with_options: bool = False) -> str:
    if not with_options:
        return question.stem
    return question.stem + "\n" + "\n".join(f"{letter}) {text}" for letter, text in question.options.items())


def first_rank(hits: Sequence[Hit], note: str) -> int | None:
    """1-based rank of the first hit from `note`, None if none of the hits is from it."""
    return next((rank for rank, hit in enumerate(hits, 1) if hit.note == note), None)


def summarize(ranks: Sequence[int | None], k: int) -> dict:
    """Recall@1, recall@k and MRR over the top k (a note not in the top k scores 0)."""
    n = len(ranks)
    found = [r for r in ranks if r is not None and r <= k]
    return {
        "recall@1": sum(r == 1 for r in found) / n if n else None,
        f"recall@{k}": len(found) / n if n else None,
        "mrr": sum(1 / r for r in found) / n if n else None,
        "n": n,
    }


def evaluate_retrieval(
    retriever, records: Sequence[QuestionRecord], k: int = 5, with_options: bool = False,
    progress: Progress | None = None,
) -> dict[str, dict]:
    """Metrics per ranker; each search leaves out the question's own section."""
    queries = [(query_text(r.question, with_options), r.note, own_section(r)) for r in records]
    return evaluate_queries(retriever, queries, k, progress)


def evaluate_queries(retriever, queries: Sequence[tuple[str, str, tuple]], k: int = 5,
                     progress: Progress | None = None) -> dict[str, dict]:
    """Metrics per ranker over (question, gold note, sections to exclude) triples."""
    ranks: dict[str, list[int | None]] = {mode: [] for mode in MODES}
    for done, (text, note, exclude) in enumerate(queries, 1):
        for mode in MODES:
            hits = retriever.search(text, k=k, mode=mode, exclude=exclude)
            ranks[mode].append(first_rank(hits, note))
        if progress:
            progress(done, len(queries))
    return {mode: summarize(ranks[mode], k) for mode in MODES}


class QueryMemo(Embedder):
    """Embeds each query once: the evaluation asks the same text of three rankers."""

    def __init__(self, inner: Embedder):
        self.inner, self.model_id, self.max_tokens = inner, inner.model_id, inner.max_tokens
        self.memo: dict[str, np.ndarray] = {}

    def prime(self, texts: Iterable[str]) -> None:
        """One batch for all queries: much faster than one model call each."""
        new = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if new:
            self.memo.update(zip(new, self.inner.embed_batch(new, query=True)))

    def embed_batch(self, texts, query=False):
        return self.inner.embed_batch(texts, query=query)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_query(self, text: str) -> np.ndarray:
        if text not in self.memo:
            self.prime([text])
        return self.memo[text]
