"""Draft tokens for speculative decoding, looked up in the text the model already has.

A grounded answer or a distractor copies much of its sources and its own earlier words
(service names, figures, JSON keys). When the last few tokens also occur earlier in the
context, the tokens that followed them there are a good guess for what comes next.
llama-cpp-python evaluates the guesses in one batch and keeps those the sampler would have
picked anyway, so the output follows the model's own distribution. Batched arithmetic rounds
differently from one-token steps, which flips near ties: on the 20 chat-bench questions,
greedy, 7 answers differed somewhere, and 13 were grounded either way.

On this CPU one token costs ~97 ms to decode and a batch of 9 ~200 ms, so a wrong guess
doubles the cost of a step. llama-cpp-python's ``LlamaPromptLookupDecoding`` guesses from a
single matching token, which is wrong too often to pay: over 6 chat answers it gave 12.0
tok/s median against 9.0 without drafts, while requiring 3 matching tokens gave 16.1
against 11.2 over 8.
"""
from __future__ import annotations

from typing import Any

import numpy as np

MIN_MATCH = 3  # tokens that must match before guessing: 2 gave 14.6 tok/s, 3 gave 16.1
MAX_MATCH = 4
DRAFT_TOKENS = 8


class NgramDraft:
    """Callable as llama-cpp-python's ``draft_model``: context token ids in, guesses out."""

    def __init__(self, max_tokens: int = DRAFT_TOKENS, min_match: int = MIN_MATCH,
                 max_match: int = MAX_MATCH):
        if not 1 <= min_match <= max_match or max_tokens < 1:
            raise ValueError("need 1 <= min_match <= max_match and max_tokens >= 1")
        self.max_tokens, self.min_match, self.max_match = max_tokens, min_match, max_match

    def __call__(self, input_ids: Any, /, **_: Any) -> np.ndarray:
        """What followed the latest earlier occurrence of the longest matching tail."""
        ids = np.asarray(input_ids)
        end = len(ids)
        for n in range(min(self.max_match, end - 1), self.min_match - 1, -1):
            windows = np.lib.stride_tricks.sliding_window_view(ids[: end - 1], n)
            starts = np.flatnonzero((windows == ids[end - n:]).all(axis=1))
            if len(starts):
                follow = starts[-1] + n
                return ids[follow: follow + self.max_tokens].astype(np.intc)
        return np.empty(0, dtype=np.intc)
