"""Draft lookup for speculative decoding: plain numpy, no model needed."""
import numpy as np
import pytest

from tutor.llm_draft import NgramDraft


def test_guesses_what_followed_the_matching_tail():
    ids = [5, 1, 2, 3, 40, 41, 42, 43, 9, 1, 2, 3]
    assert NgramDraft(max_tokens=3)(np.array(ids, dtype=np.intc)).tolist() == [40, 41, 42]


def test_prefers_the_longest_match_then_the_latest():
    # tail 7 1 2 3: only the second earlier occurrence matches all four tokens
    ids = [1, 2, 3, 50, 7, 1, 2, 3, 60, 61, 8, 1, 2, 3, 70, 7, 1, 2, 3]
    assert NgramDraft(max_tokens=2)(np.array(ids)).tolist() == [60, 61]
    # tail 9 1 2 3 matches nowhere on four: the latest three-token match wins
    ids[-4] = 9
    assert NgramDraft(max_tokens=2)(np.array(ids)).tolist() == [70, 9]


def test_no_guess_below_the_minimum_match():
    ids = np.array([1, 2, 30, 31, 4, 1, 2], dtype=np.intc)  # only "1 2" repeats
    assert NgramDraft(min_match=3)(ids).size == 0
    assert NgramDraft(min_match=2, max_tokens=2)(ids).tolist() == [30, 31]


def test_a_guess_stops_at_the_end_of_the_context_and_has_llama_cpps_dtype():
    ids = np.array([1, 2, 3, 4, 1, 2, 3], dtype=np.int64)
    out = NgramDraft(max_tokens=8)(ids)
    assert out.tolist() == [4, 1, 2, 3] and out.dtype == np.intc


@pytest.mark.parametrize("ids", [[], [1], [1, 2], [1, 2, 3]])
def test_short_contexts_give_no_guess(ids):
    assert NgramDraft()(np.array(ids, dtype=np.intc)).size == 0


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        NgramDraft(min_match=4, max_match=3)
    with pytest.raises(ValueError):
        NgramDraft(max_tokens=0)


def test_the_draft_length_is_set_by_the_environment_and_zero_turns_it_off(monkeypatch):
    from tutor.llm_llamacpp import default_draft_tokens

    monkeypatch.delenv("TUTOR_LLM_DRAFT_TOKENS", raising=False)
    assert default_draft_tokens() is None  # unset: the model decides by timing a batch
    monkeypatch.setenv("TUTOR_LLM_DRAFT_TOKENS", "0")
    assert default_draft_tokens() == 0
    monkeypatch.setenv("TUTOR_LLM_DRAFT_TOKENS", "4")
    assert default_draft_tokens() == 4
    monkeypatch.setenv("TUTOR_LLM_DRAFT_TOKENS", "lots")  # not a count: the default, not a crash
    assert default_draft_tokens() is None


class _Timed:
    """Stands in for the loaded model: counts the timings asked of it."""

    def __init__(self, cost: float):
        self.cost, self.timed = cost, 0

    def batch_cost(self, n: int) -> float:
        self.timed += 1
        return self.cost


def test_drafts_are_on_only_where_a_batch_is_cheap_and_timed_once(tmp_path, monkeypatch):
    from tutor.llm_llamacpp import DRAFT_MAX_COST, TIMINGS, drafts_pay

    monkeypatch.setenv("TUTOR_HOME", str(tmp_path / "home"))
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    for threads, measured, drafts in ((1, DRAFT_MAX_COST - 0.5, True), (2, DRAFT_MAX_COST + 0.5, False)):
        fast = _Timed(measured)
        assert drafts_pay(fast, model, n_threads=threads) is drafts, measured
        assert drafts_pay(fast, model, n_threads=threads) is drafts
        assert fast.timed == 1  # the second load reads the remembered timing

    other = _Timed(DRAFT_MAX_COST + 0.5)
    assert drafts_pay(other, model, n_threads=7) is False and other.timed == 1  # new threads: timed
    (tmp_path / "home" / "models" / TIMINGS).write_text("[not a mapping", encoding="utf-8")
    assert drafts_pay(_Timed(1.0), model, n_threads=7) is True  # a damaged file is timed again
