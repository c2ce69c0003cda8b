"""Real parts: the starter vault indexed with the real embedding model, and the default
llama.cpp model writing distractors for one of its questions (slow: minutes on two cores)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tutor import llm


@pytest.fixture(scope="module")
def default_gguf(tmp_path_factory) -> Path:
    """The default model, assembled once; TUTOR_TEST_MODEL_HOME reuses one across runs."""
    pytest.importorskip("llama_cpp")
    home = Path(os.environ.get("TUTOR_TEST_MODEL_HOME") or tmp_path_factory.mktemp("llmhome"))
    previous = os.environ.get("TUTOR_HOME")
    os.environ["TUTOR_HOME"] = str(home)
    try:
        return llm.ensure_default_model()
    finally:
        if previous is None:
            os.environ.pop("TUTOR_HOME")
        else:
            os.environ["TUTOR_HOME"] = previous


@pytest.mark.slow
def test_default_model_writes_a_valid_checked_variant(starter, default_gguf, tmp_path):
    from tutor.practice.checks import Target, normalized
    from tutor.practice.generate import Generator, chat_model
    from tutor.practice.generated import GeneratedStore, section_hashes

    gen = Generator(starter, chat_model(f"llamacpp:{default_gguf}", seed=7), seed=0)
    record = gen.find_question("batch-vs-streaming-selection#1")
    result = gen.distractors(record)

    q, original = result.question, record.question
    correct = [original.options[a] for a in original.answer]
    assert sorted(q.options[a] for a in q.answer) == sorted(correct)  # kept word for word
    new = [text for letter, text in q.options.items() if letter not in q.answer]
    assert result.missing == 0 and len(new) == 3, [r.reason for r in result.rejected]
    target = Target(original.stem, tuple(correct), tuple(original.options.values()))
    known = {normalized(o) for o in original.options.values()}
    for text in new:
        assert normalized(text) not in known
        assert gen.checker.giveaway(text, target) is None and gen.checker.unknown(text) is None
    assert None not in section_hashes(gen.index, result.citations)  # every citation is a real section
    for letter in q.options:
        if letter not in q.answer:
            assert "(근거: " in q.explanations[letter]

    store = GeneratedStore(tmp_path / "generated.sqlite")
    item = store.save(starter, q, result.citations, result.source_question, result.origin, gen.index)
    assert [r.id for r in store.records(starter)] == [item.id] and item.id == result.id
    json.dumps(result.to_json(), ensure_ascii=False)
    print(f"\nvariant in {result.seconds:.1f} s, {result.calls} call(s): {new}")
