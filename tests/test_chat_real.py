"""Grounded chat end to end: the real embedding index of the starter vault and the real
default llama.cpp model (slow: set TUTOR_TEST_MODEL_HOME to reuse an assembled model)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tutor import llm, llm_blocks
from tutor.chat import ChatEngine, make_model
from tutor.retrieve import Retriever

HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """The assembled, hash-checked default GGUF (assembled once per run, or reused)."""
    pytest.importorskip("llama_cpp")
    home = Path(os.environ.get("TUTOR_TEST_MODEL_HOME") or tmp_path_factory.mktemp("llmhome"))
    old = os.environ.get("TUTOR_HOME")
    os.environ["TUTOR_HOME"] = str(home)
    try:
        return llm.ensure_default_model()
    finally:
        if old is None:
            del os.environ["TUTOR_HOME"]
        else:
            os.environ["TUTOR_HOME"] = old


@pytest.fixture
def engine(starter, model_file):
    return ChatEngine(Retriever(starter), make_model(f"llamacpp:{model_file}", seed=1),
                      vault_name=starter.name)


@pytest.mark.slow
def test_korean_question_is_answered_in_korean_citing_the_right_note(engine):
    events = list(engine.ask("Kinesis Data Streams 샤드 하나의 쓰기 처리량은 얼마인가요?"))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "sources" and kinds[-1] == "done" and kinds.count("token") > 3
    answer = events[-1][1]
    assert answer.grounded, answer.text
    assert len(HANGUL.findall(answer.text)) > 10, answer.text
    assert "1 MB" in answer.text or "1MB" in answer.text or "1,000" in answer.text, answer.text
    assert answer.citations, answer.text
    assert answer.citations[0].note == "kinesis-data-streams-shards.md", answer.citations
    assert all(c in answer.sources for c in answer.citations)
    assert answer.citations[0].link.endswith("file=kinesis-data-streams-shards")


@pytest.mark.slow
def test_out_of_domain_question_is_refused_in_its_language(engine):
    answer = list(engine.ask("김치찌개 맛있게 끓이는 법 알려줘"))[-1][1]
    assert not answer.grounded and answer.citations == []
    assert HANGUL.search(answer.text) and answer.sources  # says so, shows the closest sections


@pytest.mark.slow
def test_sources_read_while_typing_are_not_read_again(engine, monkeypatch):
    """Counted in tokens the model evaluates, not seconds, so a busy machine cannot fail it."""
    llama = engine.model.llama
    evaluated: list[int] = []
    real_eval = llama.eval
    monkeypatch.setattr(llama, "eval", lambda toks: evaluated.append(len(toks)) or real_eval(toks))
    engine.warm()  # the system prompt, as the app reads it at start-up
    evaluated.clear()
    question = "Glue 크롤러는 무슨 일을 하나요?"
    read = engine.preread(question)
    assert read > 300 and sum(evaluated) > 200  # the sources, in small batches
    assert max(evaluated) <= 32
    evaluated.clear()
    events = iter(engine.ask(question))
    next(kind for kind, _ in events if kind == "token")
    assert 0 < sum(evaluated) < 60 < read // 5  # only the question and the instruction after it
    answer = [value for kind, value in events if kind == "done"][0]
    assert answer.grounded, answer.text


@pytest.mark.slow
def test_reading_ahead_changes_no_answer(engine):
    """The prompt read in pieces (ahead while typed, or after other prompts) has the numbers of
    one pass over it, so the answer is the same to the character."""
    if not engine.model._engine.grid:
        pytest.skip("no batch grid on this CPU reads a prompt in pieces exactly as in one go")
    engine.warm()
    question = "Glue 크롤러는 무슨 일을 하나요?"

    def answer() -> str:
        return list(engine.ask(question))[-1][1].text

    fresh = answer()
    list(engine.ask("Kinesis 샤드 하나의 쓰기 처리량은?"))  # the cache now holds another prompt
    engine.preread(question[:-5])  # typed up to "무슨 일을"
    assert answer() == fresh
    assert answer() == fresh  # and again, the same prompt already in the cache


@pytest.mark.slow
def test_a_prompt_longer_than_the_context_says_so(model_file):
    """Read on the grid or not, an over-long prompt gets the message that says how to fix it."""
    from langchain_core.messages import HumanMessage

    from tutor.llm import LLMError

    small = make_model(f"llamacpp:{model_file}", n_ctx=256, max_tokens=8)
    with pytest.raises(LLMError, match="too long for the model's context"):
        list(small.stream([HumanMessage("Kinesis 샤드 " * 300)]))
    assert [c.content for c in small.stream([HumanMessage("Say OK.")])]  # the model still answers


@pytest.mark.slow
def test_a_follow_up_read_while_typed_is_answered_as_if_it_were_not(engine, monkeypatch):
    """Its rewrite and its sources are read ahead, at a later pause without reading the
    conversation or the sources again: after Enter the model reads only the end of the prompt,
    and the query and answer are those of a follow-up asked without reading ahead."""
    if not engine.model._engine.grid:
        pytest.skip("no batch grid on this CPU reads a prompt in pieces exactly as in one go")
    engine.warm()
    history = [("Kinesis 샤드 하나의 쓰기 처리량은?", "샤드 하나는 초당 1MB 또는 1,000건을 쓸 수 있습니다 [1].")]
    follow_up = "그럼 읽기는요?"
    fresh = list(engine.ask(follow_up, history))[-1][1]
    rewrite = engine._rewrite_messages(follow_up, history)
    assert engine.model.ahead(rewrite, stop_words=["\n"]) == engine.model.invoke(rewrite, stop=["\n"]).text

    llama = engine.model.llama
    evaluated: list[int] = []
    real_eval = llama.eval
    monkeypatch.setattr(llama, "eval", lambda toks: evaluated.append(len(toks)) or real_eval(toks))
    assert engine.preread(follow_up[:-2], history=history) > 200  # a pause before the last letters
    evaluated.clear()
    assert engine.preread(follow_up, history=history) > 200
    assert sum(evaluated) < 100  # the new rewrite; the conversation and sources were kept
    evaluated.clear()
    events = iter(engine.ask(follow_up, history))
    next(kind for kind, _ in events if kind == "token")
    assert 0 < sum(evaluated) < 60  # not the conversation, not the rewrite, not the sources
    answer = [value for kind, value in events if kind == "done"][0]
    assert (answer.query, answer.text) == (fresh.query, fresh.text)


@pytest.mark.slow
def test_typing_on_checks_the_sources_while_the_model_reads(engine):
    """The check runs inside the model's read, which holds its lock: it must not need the model
    (it once asked the tokenizer for a count and waited on that lock for ever)."""
    import threading

    read: list[int] = []
    typing = threading.Thread(target=lambda: read.append(engine.preread(
        "Glue 크롤러는 ", stop=lambda: True, newest=lambda: "Glue 크롤러는 무슨 ")))
    typing.start()
    typing.join(300)
    assert not typing.is_alive(), "the read ahead waited on the model it was reading with"
    assert read[0] > 300  # the words typed since find the same sources: read on


@pytest.fixture
def blocks_home(engine, tmp_path, monkeypatch):
    """Blocks on, kept in a home of this test's own, and forgotten by the shared model after it."""
    monkeypatch.setenv("TUTOR_HOME", str(tmp_path / "blocks-home"))
    monkeypatch.setenv("TUTOR_BLOCKS", "1")
    yield tmp_path / "blocks-home"
    engine.model._engine.blocks = None


@pytest.mark.slow
def test_a_block_copied_to_where_it_was_read_answers_as_reading_it_does(engine, blocks_home, monkeypatch):
    """Copied to its own place, a kept block's keys and values are those the answer would
    compute (read on the same grid), so the answer is the same to the character."""
    if not engine.model._engine.grid:
        pytest.skip("no batch grid on this CPU reads a prompt in pieces exactly as in one go")
    question = "Kinesis 샤드 하나의 쓰기 처리량은 얼마인가요?"
    engine.k = 1  # one source: the block sits where it was read, after "[1]"
    monkeypatch.setattr(llm_blocks, "REREAD", 0)  # all of it copied: re-read off the grid, its
    # first tokens would differ in the last bits
    engine.warm()
    monkeypatch.setenv("TUTOR_BLOCKS", "0")
    fresh = list(engine.ask(question))[-1][1]
    monkeypatch.setenv("TUTOR_BLOCKS", "1")
    assert engine.read_blocks(engine.retriever.search(question, k=1)) == 1
    list(engine.ask("S3 수명 주기 규칙은?"))  # the KV cache now holds another prompt
    model_engine, copied = engine.model._engine, []
    real_splice = model_engine.splice
    monkeypatch.setattr(model_engine, "splice", lambda tokens: copied.append(real_splice(tokens)) or copied[-1])
    assert list(engine.ask(question))[-1][1].text == fresh.text
    assert copied[0] > 50


@pytest.mark.slow
def test_kept_blocks_are_copied_into_a_prompt_at_any_place(engine, blocks_home, monkeypatch):
    """Counted in tokens the model evaluates: after Enter it reads only what lies between the
    blocks and the question; the answer still cites the note (blocks moved from where they
    were read do not see each other, so it is not the same to the character)."""
    question = "Kinesis Data Streams 샤드 하나의 쓰기 처리량은 얼마인가요?"
    engine.warm()
    hits = engine.retriever.search(question, k=engine.k)
    assert engine.read_blocks(hits) == len(hits) >= 3  # each on its own, cut to the budget alone
    assert engine.read_blocks(hits) == 0  # kept: not read again
    list(engine.ask("S3 수명 주기 규칙은?"))
    llama = engine.model.llama
    evaluated: list[int] = []
    real_eval = llama.eval
    monkeypatch.setattr(llama, "eval", lambda toks: evaluated.append(len(toks)) or real_eval(toks))
    events = iter(engine.ask(question))
    sources = next(value for kind, value in events if kind == "sources")
    next(kind for kind, _ in events if kind == "token")
    assert 0 < sum(evaluated) < 120 < sum(len(s.text) for s in sources) // 3
    answer = [value for kind, value in events if kind == "done"][0]
    assert answer.grounded and answer.citations[0].note == "kinesis-data-streams-shards.md", answer.text
