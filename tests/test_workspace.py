"""The workspace behind the UI, for real over a small vault: first index, the watcher's debounced
re-sync, answering from the last committed index while a sync runs, model switching, practice
and export. The embedder is the fake one; the chat model is LangChain's fake that streams."""
from __future__ import annotations

import shutil
import threading
import time

import pytest

from tests.conftest import REPO, write_note
from tests.ollama_stub import OllamaStub
from tutor.watch import VaultWatcher
from tutor.workspace import NotReady, Workspace

FIXTURES = REPO / "tests" / "fixtures" / "notes"


@pytest.fixture
def vault(tmp_path):
    root = tmp_path / "vault"
    write_note(root, "kinesis.md", "kinesis", {"처리량": "샤드 하나는 초당 1MB 쓰기를 받는다."}, tags=("service/kinesis",))
    write_note(root, "s3.md", "s3", {"스토리지": "Amazon S3는 객체 스토리지다."}, tags=("service/s3",))
    shutil.copy(FIXTURES / "multi_questions.md", root / "sqs.md")
    return root


@pytest.fixture
def fake_llm(monkeypatch):
    """The built-in model's place taken by a fake that streams a cited answer."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    import tutor.chat
    import tutor.llm

    made, real = [], tutor.chat.make_model

    def make_model(spec=None, **opts):
        made.append(spec)
        if spec.startswith("ollama:"):  # the real Ollama client, against whatever OLLAMA_HOST is
            return real(spec, **opts)
        return GenericFakeChatModel(messages=iter([AIMessage("샤드 하나는 초당 1MB를 쓴다 [1].")] * 20))

    monkeypatch.setattr(tutor.chat, "make_model", make_model)
    monkeypatch.setattr(tutor.llm, "ensure_default_model", lambda progress=None: progress(1, 1))
    return made


def started(vault, **kw) -> Workspace:
    ws = Workspace(vault, **kw)
    ws.start(warm_llm=False).join(timeout=60)
    return ws


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_first_start_indexes_the_vault(vault, fake_embedder):
    ws = started(vault)
    try:
        status = ws.status()
        assert (status.state, status.notes, status.indexed, status.changed) == ("ready", 3, True, 3)
        assert status.embedding_model == "fake-trigram-64" and status.seconds is not None and status.last_sync
        assert dict(ws.tags())["service/kinesis"] == 1
        assert ws.link("kinesis.md") == "obsidian://open?vault=vault&file=kinesis"
    finally:
        ws.close()


def test_a_burst_of_saves_syncs_once_after_the_debounce(vault, fake_embedder):
    ws = started(vault, debounce=0.3)
    try:
        syncs = []
        real_sync = ws.sync
        ws.sync = lambda progress=None: syncs.append(time.monotonic()) or real_sync(progress)
        (vault / ".obsidian").mkdir()
        (vault / ".obsidian" / "workspace.json").write_text("{}")  # Obsidian's own files: no sync
        (vault / "image.png").write_bytes(b"png")
        time.sleep(0.8)
        assert syncs == []
        saved = time.monotonic()
        for body in ("샤드는 2MB", "샤드는 3MB", "샤드 하나는 초당 5MB 쓰기를 받는다."):
            write_note(vault, "kinesis.md", "kinesis", {"처리량": body}, tags=("service/kinesis",))
            time.sleep(0.05)
        assert wait_for(lambda: ws.status().changed == 1 and ws.status().synced_at > saved)
        time.sleep(0.8)
        assert len(syncs) == 1 and syncs[0] - saved >= 0.3
        with ws.store.connect() as con:
            texts = [row[0] for row in con.execute("SELECT text FROM chunks WHERE path = 'kinesis.md'")]
        assert any("5MB" in text for text in texts)
    finally:
        ws.close()


def test_chat_answers_from_the_last_index_while_a_sync_runs(vault, fake_embedder, fake_llm):
    ws = started(vault)
    try:
        release, embedding = threading.Event(), threading.Event()

        def slow(stage, done, total):
            if stage == "embed":
                embedding.set()
                release.wait(10)

        write_note(vault, "kinesis.md", "kinesis", {"처리량": "샤드 하나는 초당 7MB 쓰기를 받는다."}, tags=("service/kinesis",))
        syncing = threading.Thread(target=ws.sync, kwargs={"progress": slow})
        syncing.start()
        assert embedding.wait(10)
        assert (ws.status().state, ws.status().stage) == ("syncing", "embed")
        events = list(ws.ask("샤드 처리량은?"))
        sources = next(value for kind, value in events if kind == "sources")
        assert "1MB" in sources[0].text and "7MB" not in sources[0].text
        release.set()
        syncing.join(10)
        assert ws.status().state == "ready"
        sources = next(value for kind, value in ws.ask("샤드 처리량은?") if kind == "sources")
        assert "7MB" in sources[0].text
    finally:
        ws.close()


def test_ask_streams_sources_then_tokens(vault, fake_embedder, fake_llm):
    ws = started(vault)
    try:
        kinds = [kind for kind, _ in ws.ask("샤드 처리량은?", tags=["service/kinesis"])]
        assert kinds[:2] == ["loading", "sources"] and kinds[-1] == "done" and kinds.count("token") >= 3
        assert [kind for kind, _ in ws.ask("또?")][0] == "sources"  # loaded once
        done = [value for kind, value in ws.ask("샤드 처리량은?") if kind == "done"][0]
        assert done.grounded and done.citations[0].note == "kinesis.md"
        assert fake_llm == ["default"] and ws.status().llm_state == "ready"
    finally:
        ws.close()


def test_typing_reads_ahead_a_first_question_once_the_model_is_loaded(vault, fake_embedder, fake_llm, monkeypatch):
    from tutor.chat import ChatEngine

    read = []
    monkeypatch.setattr(ChatEngine, "preread",
                        lambda self, text, tags=(), stop=None, history=(), newest=None: read.append((text, tags, history)) or 0)
    ws = started(vault)
    try:
        ws.typing("샤드 처리량")
        assert not wait_for(lambda: read, timeout=1.0) and fake_llm == []  # typing never loads a model
        list(ws.ask("샤드?"))
        ws.typing("샤드 처리량", tags=("service/kinesis",))
        assert wait_for(lambda: read) and read == [("샤드 처리량", ("service/kinesis",), ())]
        ws.typing("그럼 S3는?", history=[("샤드?", "1MB [1]")])
        assert wait_for(lambda: len(read) == 2) and read[1] == ("그럼 S3는?", (), (("샤드?", "1MB [1]"),))
        monkeypatch.setenv("TUTOR_PREREAD", "0")
        ws.typing("S3 스토리지")
        assert not wait_for(lambda: len(read) > 2, timeout=1.0)
    finally:
        ws.close()


def test_nothing_to_ask_before_the_first_index(vault, fake_embedder):
    ws = Workspace(vault)
    with pytest.raises(NotReady, match="still being indexed"):
        list(ws.ask("질문"))


def test_a_missing_vault_is_an_error_in_the_status(tmp_path, fake_embedder):
    ws = started(tmp_path / "gone")
    assert ws.status().state == "error" and "does not exist" in ws.status().error


def test_ollama_models_are_offered_and_a_failed_switch_keeps_the_model(vault, fake_embedder, fake_llm, monkeypatch):
    ws = started(vault)
    try:
        monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # nothing listens there
        choices, problem = ws.llm_choices()
        assert choices == ["default"] and "Ollama is not running" in problem and "ollama serve" in problem
        from tutor.llm import LLMError

        list(ws.ask("샤드?"))
        with pytest.raises(LLMError, match="not running"):
            ws.set_llm("ollama:qwen-test")
        assert ws.llm_spec == "default" and ws.status().llm_state == "ready"
        with OllamaStub(models=["qwen-test:latest"]) as stub:
            monkeypatch.setenv("OLLAMA_HOST", stub.host)
            assert ws.llm_choices() == (["default", "ollama:qwen-test:latest"], None)
    finally:
        ws.close()


def test_practice_records_answers_and_scores_by_service(vault, fake_embedder):
    ws = started(vault)
    try:
        quiz = ws.quiz(["service/sqs"])
        presented = quiz.next()
        grade = ws.check(quiz, presented, presented.answer, 3.0)
        assert grade.correct
        [row] = ws.scores()
        assert (row["tag"], row["attempts"], row["correct"], row["recent"]) == ("service/sqs", 1, 1, [True])
    finally:
        ws.close()


def test_export_writes_outside_the_vault(vault, fake_embedder, tutor_home):
    ws = started(vault)
    try:
        path, count = ws.export("markdown")
        assert path.parent == tutor_home / "exports" and count >= 2
        assert "## 📝 관련 문제" in path.read_text(encoding="utf-8")
        anki, _ = ws.export("anki", ["service/sqs"])
        assert anki.suffix == ".apkg" and anki.stat().st_size > 0
    finally:
        ws.close()


def test_watcher_filters_and_debounces(tmp_path):
    calls = []
    watcher = VaultWatcher(tmp_path, calls.append, debounce=0.2)
    watcher.notice("opened", False, str(tmp_path / "a.md"))
    watcher.notice("modified", False, str(tmp_path / ".obsidian" / "workspace.md"))
    watcher.notice("modified", False, str(tmp_path / "a.png"))
    watcher.notice("modified", True, str(tmp_path / "folder"))  # a folder's mtime: its files say more
    time.sleep(0.4)
    assert calls == []
    watcher.notice("modified", False, str(tmp_path / "a.md"))
    watcher.notice("moved", False, str(tmp_path / "b.md"), str(tmp_path / "sub" / "c.md"))
    watcher.notice("deleted", True, str(tmp_path / "old-folder"))
    time.sleep(0.1)
    assert calls == []
    time.sleep(0.4)
    assert calls == [{"a.md", "b.md", "sub/c.md", "old-folder"}]


def test_generated_questions_are_saved_go_stale_and_drop(vault, fake_embedder, monkeypatch):
    """The generator's place is taken by one that returns a fixed question: what is tested is the
    workspace's part (usable or not, saved with section hashes, stale after an edit, dropped)."""
    from dataclasses import replace

    import tutor.practice.generate as generate
    from tutor.practice.generated import Citation
    from tutor.workspace import WorkspaceError

    class FixedGenerator:
        wrong = 1

        def __init__(self, vault, model, embedder=None):
            self.vault = vault

        def find_question(self, question_id):
            raise AssertionError("only for variants of saved variants")

        def distractors(self, record, progress=None):
            if progress:
                progress(generate.Progress("end", call=1))
            q = record.question
            keep = {letter: q.options[letter] for letter in [*q.answer, *[x for x in q.options if x not in q.answer][:self.wrong]]}
            question = replace(q, options=keep, explanations={k: "노트 근거" for k in keep})
            return generate.Generated(self.vault, question, [Citation(record.note, q.headings)], record.id,
                                      {"kind": "distractors", "question": record.id, "n": 1}, [], 0, 1, True, 0.1)

    monkeypatch.setattr(generate, "Generator", FixedGenerator)
    monkeypatch.setattr(generate, "chat_model", lambda spec=None: None)
    ws = started(vault)
    try:
        record = next(r for r in ws.quiz().records.values() if len(r.question.answer) == 1)
        told = []
        made = ws.variant(record, progress=told.append)
        assert told == [generate.Progress("end", call=1)]  # the UI's log hears the generator
        assert ws.as_record(made).title == record.title and len(made.question.options) == 2
        item = ws.save(made)
        assert item.id in {r.id for r in ws.quiz().records.values()}  # saved ones join practice
        text = (vault / "sqs.md").read_text(encoding="utf-8")
        stem = record.question.stem[:20]
        assert stem in text
        (vault / "sqs.md").write_text(text.replace(stem, stem + " (edited)"), encoding="utf-8")
        ws.sync()
        assert [i.id for i in ws.stale()] == [item.id] and ws.status().stale == 1
        assert ws.drop(item.id) and ws.stale() == [] and ws.status().stale == 0
        FixedGenerator.wrong = 0
        with pytest.raises(WorkspaceError, match="No new wrong option"):
            ws.variant(record)
    finally:
        ws.close()


def test_status_counts_the_sections_spare_time_keeps_once_an_answer_is_done(vault, fake_embedder, monkeypatch):
    import tutor.chat
    import tutor.llm
    from tests.test_chat import BlockChat

    monkeypatch.setenv("TUTOR_BLOCKS", "1")
    model = BlockChat(replies=["샤드 하나는 초당 1MB를 쓴다 [1]."])
    monkeypatch.setattr(tutor.chat, "make_model", lambda spec=None, **opts: model)
    monkeypatch.setattr(tutor.llm, "ensure_default_model", lambda progress=None: progress(1, 1))
    ws = Workspace(vault)
    try:
        ws.start(warm_llm=True).join(timeout=60)
        assert ws.status().kept == 0  # the model loaded, nothing read yet
        done = [value for kind, value in ws.ask("샤드 처리량은?") if kind == "done"][0]
        assert wait_for(lambda: ws.status().kept == ws.status().chunks, timeout=20)  # after SPARE_AFTER
        first = model.texts[:len(done.sources)]  # that answer's sources first
        assert {s.heading for s in done.sources} == {t.split("\n")[2].split("] ", 1)[1] for t in first}
        monkeypatch.delenv("TUTOR_BLOCKS")
        assert ws.status().kept is None
    finally:
        ws.close()


def test_reading_ahead_chosen_in_the_ui_outlives_it_and_starts_on_the_loaded_model(vault, fake_embedder, monkeypatch):
    import tutor.chat
    import tutor.llm
    from tests.test_chat import BlockChat

    monkeypatch.delenv("TUTOR_BLOCKS", raising=False)
    models = []

    def make_model(spec=None, **opts):
        models.append(BlockChat(replies=["샤드 하나는 초당 1MB를 쓴다 [1]."]))
        return models[-1]

    monkeypatch.setattr(tutor.chat, "make_model", make_model)
    monkeypatch.setattr(tutor.llm, "ensure_default_model", lambda progress=None: progress(1, 1))
    ws = Workspace(vault)
    try:
        ws.start(warm_llm=True).join(timeout=60)
        assert ws.read_ahead() == (False, False) and ws.status().kept is None
        ws.set_read_ahead(True)
        assert wait_for(lambda: ws.status().kept == ws.status().chunks, timeout=20)  # spare time began
        assert Workspace(vault).read_ahead() == (True, False)  # the next run too
        ws.set_llm("llamacpp:/models/other.gguf")  # a switched model is given the kept sections too
        assert wait_for(lambda: models[-1].prompts and ws.status().kept == ws.status().chunks, timeout=20)
        assert len(models) == 2 and models[-1].blocks is not None
        monkeypatch.setenv("TUTOR_BLOCKS", "0")
        assert ws.read_ahead() == (False, True) and ws.status().kept is None  # the environment wins
    finally:
        ws.close()
