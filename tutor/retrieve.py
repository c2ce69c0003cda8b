"""Finding the note sections that answer a question: dense and lexical rankers, fused."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from index import lexical, loanwords
from index.embedder import Embedder, get_embedder
from index.home import index_dir
from index.store import Hit, Store

MODES = ("hybrid", "dense", "lexical")
# Tuned on the starter vault's 32 practice stems and the chat bench's 20 questions, checked on
# 64 questions nothing was tuned on (`bench/retrieval_bench.py`; README has the figures).
RRF_K = 10  # ranks matter, not raw scores; 10 trusts the top of each ranker more than the usual 60
CANDIDATES = 50
# Practice-question blocks share exam phrasing ("A company needs ... Which solution ...") with
# every exam-style question, so they match by style, not by subject, and crowded out the prose
# that explains the service. They still rank, at a quarter of the weight.
PRACTICE_WEIGHT = 0.25
PER_NOTE = 2  # sections one note may hold in the top k: room for a second note's view
# The small multilingual embedder reads English exam stems against Korean prose poorly (dense
# recall@5 0.78 on the stems, stemmed lexical 1.0), so lexical leads and dense breaks ties and
# rescues what BM25 misses (a paraphrase; "column-level permissions" that BM25 gives to
# OpenSearch's fine-grained access control). 0.3 at k 10 is the most lexical-led setting that
# keeps recall@5 1.0 on the stems and the chat bench and ranks the Lake Formation note first
# for that question (tests/test_retrieval_real.py); 0.2-0.25 lost that, 0.35-0.5 lowered the
# stems' MRR, k 20 with 0.4 lost a stem.
DENSE_WEIGHT = 0.3


class RetrievalError(Exception):
    """The index cannot answer; the message says which command fixes it."""


def fuse(rankings: list[list[tuple[int, float]]], weight: Callable[[int], float] = lambda _: 1.0,
         trust: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: a section both rankers like beats one only a single ranker likes.
    ``trust`` weighs each ranking, ``weight`` each section."""
    scores: dict[int, float] = {}
    for ranking, ranker in zip(rankings, trust or [1.0] * len(rankings)):
        for rank, (chunk_id, _) in enumerate(ranking):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + ranker * weight(chunk_id) / (RRF_K + rank + 1)
    return sorted(scores.items(), key=lambda item: -item[1])


class Retriever:
    def __init__(self, vault: Path, embedder: Embedder | None = None):
        self.vault = Path(vault)
        self.store = Store(index_dir(self.vault))
        self.embedder = embedder or get_embedder()
        if not self.store.exists():
            raise RetrievalError(f"No index for {self.vault} - run 'tutor index --notes {self.vault}'")
        manifest = self.store.manifest()
        built_with = manifest.get("model_id")
        if built_with != self.embedder.model_id:
            raise RetrievalError(
                f"The index for {self.vault} was built with {built_with}, not {self.embedder.model_id} - "
                f"run 'tutor index --notes {self.vault}' to rebuild it"
            )
        if manifest.get("lexical_version", 1) != lexical.VERSION:
            raise RetrievalError(
                f"The index for {self.vault} has a word index made by another version, which would miss matches - "
                f"run 'tutor index --notes {self.vault}' to update it (nothing is embedded again)"
            )

    def search(
        self,
        query: str,
        k: int = 5,
        tags: tuple[str, ...] = (),
        mode: str = "hybrid",
        exclude: tuple[tuple[str, tuple[str, ...]], ...] = (),
    ) -> list[Hit]:
        """Hits carry their dense cosine (`Hit.dense`) whatever the mode: callers judge relevance by it.

        `exclude` drops sections (note, heading path) and everything below them: an evaluation
        must not retrieve the very question block it is asking about.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        query = loanwords.expand(query)  # both rankers: the embedder, too, knows "Athena" better
        vector = self.embedder.embed_query(query)
        with self.store.snapshot() as snap:
            allowed = snap.allowed_ids(tags)
            dense = snap.dense(vector, CANDIDATES, allowed) if mode != "lexical" else []
            lexical = snap.lexical(query, CANDIDATES, allowed) if mode != "dense" else []
            rows = snap.rows(list({i for i, _ in dense + lexical}))

            def weight(chunk_id: int) -> float:
                return PRACTICE_WEIGHT if rows[chunk_id]["practice"] else 1.0

            if mode == "hybrid":
                ranked = fuse([dense, lexical], weight, trust=(DENSE_WEIGHT, 1.0))
            else:  # the same demotion, keeping the ranker's own score
                own = dict(dense or lexical)
                ranked = [(i, own[i]) for i, _ in fuse([dense or lexical], weight)]
            hits = snap.hits(ranked, k, dense=dict(dense), skip=lambda row: _excluded(row, exclude),
                             per_note=PER_NOTE, rows=rows)
            for i, hit in enumerate(hits):
                if hit.dense is None:
                    cosine = float(np.dot(snap.index.reconstruct(hit.chunk_id), vector))
                    hits[i] = Hit(**{**hit.__dict__, "dense": cosine})
        return hits


def _excluded(row: dict, exclude) -> bool:
    return any(row["note"] == note and row["headings"][: len(path)] == path for note, path in exclude)
