"""The ``llama_cpp.Llama`` the embedded backend runs: the stock class with two speed-ups that
keep its output distribution (batched arithmetic can still flip a near tie). Imported only
after llama-cpp-python is known to import.

* Grammar-constrained output asks the grammar only about the token it is about to take
  (``GrammarLastSampler``): JSON at 12.9 tok/s instead of 9.3.
* Speculative decoding with drafts looked up in the context (``NgramDraft``). The stock
  class turns on logits for every prompt token as soon as it has a draft model, which
  costs a 152k-vocabulary row per prompt token and a 2.5 GB score buffer; here only the
  small batches that check drafts ask for them.

Drafts pay only where checking a batch of guesses costs much less than taking the same
tokens one by one, which ``batch_cost`` measures (``tutor.llm_llamacpp`` decides with it).

How a prompt is cut into batches changes its numbers: ggml multiplies rows in groups (of 4
on AVX2), and a batch under 8 tokens takes another kernel, so a prompt read in pieces (ahead,
while the question is typed, or after a previous prompt that shared its start) gave answers
that differ from reading it in one go. ``steady_grid`` finds the batch grid under which the
pieces add up to exactly the one pass on this CPU.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import llama_cpp
import numpy as np

from tutor.llm_draft import NgramDraft
from tutor.llm_sampler import GrammarLastSampler



class Llama(llama_cpp.Llama):
    def __init__(self, *args: Any, draft_tokens: int = 0, **kwargs: Any):
        # A second KV-cache sequence, sharing the first one's cells, is where a cached block
        # is loaded before it is moved into the prompt (tutor.llm_blocks). The stock class
        # has no parameter for either setting; the context is made inside __init__.
        module = llama_cpp.llama_cpp
        stock = module.llama_context_default_params

        def params() -> Any:
            p = stock()
            p.n_seq_max, p.kv_unified = 2, True
            return p

        module.llama_context_default_params = params
        try:
            super().__init__(*args, **kwargs)
        finally:
            module.llama_context_default_params = stock
        self.draft(draft_tokens)

    def draft(self, tokens: int) -> None:
        """Guess ``tokens`` tokens a step from the context (0: none). Set after ``__init__``,
        which would otherwise switch every token's logits on."""
        self.draft_model = NgramDraft(tokens) if tokens else None

    def batch_cost(self, n: int, repeats: int = 2) -> float:
        """How many one-token decode steps one batch of ``n`` tokens (all logits, as a draft
        check asks for) costs here: the fastest of ``repeats`` each, after a warm-up. It
        clears the context, so it runs on a fresh model (in ``__init__``) or before a reset."""
        def seconds(size: int) -> float:
            self._ctx.kv_cache_seq_rm(-1, 0, -1)
            self._batch.set_batch(batch=list(range(1000, 1000 + size)), n_past=0, logits_all=True)
            start = time.perf_counter()
            self._ctx.decode(self._batch)
            return time.perf_counter() - start

        self.n_tokens = 0
        seconds(n)
        one = min(seconds(1) for _ in range(repeats))
        cost = min(seconds(n) for _ in range(repeats)) / one
        self._ctx.kv_cache_seq_rm(-1, 0, -1)
        return cost

    def steady_grid(self, sizes: Sequence[int] = (8, 16, 32, 64)) -> int:
        """The smallest ``g`` such that batches starting at multiples of ``g``, each at least
        ``g`` long, leave the same last-token logits as one pass over the prompt; 0 if none
        does. It clears the context, like ``batch_cost``."""
        def logits(tokens: list[int], cuts: list[int]) -> np.ndarray:
            self._ctx.kv_cache_seq_rm(-1, 0, -1)
            edges = [0, *cuts, len(tokens)]
            for start, end in zip(edges, edges[1:]):
                self._batch.set_batch(batch=tokens[start:end], n_past=start, logits_all=False)
                self._ctx.decode(self._batch)
            row = llama_cpp.llama_get_logits_ith(self._ctx.ctx, -1)
            return np.ctypeslib.as_array(row, shape=(self.n_vocab(),)).copy()

        self.n_tokens = 0
        found = 0
        for g in sizes:
            tokens = list(range(1000, 1000 + 3 * g + 3))  # a tail that is no multiple of g
            if len(tokens) > self.n_batch:
                break
            whole = logits(tokens, [])
            if all(np.array_equal(whole, logits(tokens, cuts)) for cuts in ([g, 2 * g], [2 * g])):
                found = g
                break
        self._ctx.kv_cache_seq_rm(-1, 0, -1)
        return found

    def _init_sampler(self, *args: Any, grammar: Any = None, **kwargs: Any) -> Any:
        chain = super()._init_sampler(*args, grammar=None, **kwargs)
        return chain if grammar is None else GrammarLastSampler(self, chain, grammar)

    def eval(self, tokens: Sequence[int]) -> None:
        """Stock ``eval``, but a batch short enough to hold drafts (a sampled token and its
        guesses) gets logits for every token, which the sampler checks each guess against,
        and a prompt only for its last token. Written out rather than calling the stock one
        with ``_logits_all`` flipped: that copies the logits into ``scores``, which has only
        ``n_batch`` rows without logits_all, at row ``n_past``, and is read only for logprobs."""
        every = self.draft_model is not None and len(tokens) <= 1 + self.draft_model.max_tokens
        self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)
        for i in range(0, len(tokens), self.n_batch):
            batch = tokens[i: i + self.n_batch]
            n_past = self.n_tokens
            self._batch.set_batch(batch=batch, n_past=n_past, logits_all=every)
            self._ctx.decode(self._batch)
            self.input_ids[n_past: n_past + len(batch)] = batch
            self.n_tokens += len(batch)
            self._requires_eval = False
