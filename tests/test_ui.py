"""The UI's handlers, driven with a fake workspace that has the real one's methods.

The fake answers at once and records what it was asked, so these tests check what the page
shows (order of streamed updates, messages, panels) without models or an index.
"""
from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from index.note import Question, QuestionRecord
from tests.conftest import REPO
from tutor.chat import Answer, Source
from tutor.practice.generate import Progress
from tutor.practice.history import History
from tutor.practice.quiz import Quiz
from tutor.workspace import Status, Workspace
from ui import chat_tab, notes_tab, practice_tab, render
from ui.text import TEXT, lang_of


class LLMError(Exception):
    """Named like tutor.llm's: the UI shows such messages as they are."""


def source(n: int, note: str = "kinesis.md", title: str = "Kinesis 샤드") -> Source:
    return Source(n, note, title, f"{title} > 처리량", 12, "샤드 하나는 초당 1MB 쓰기를 받는다. " * 3, 0.91,
                  f"obsidian://open?vault=notes&file={note[:-3]}")


def record(qid: str, answer=("B",), tags=("service/kinesis",)) -> QuestionRecord:
    question = Question(
        stem=f"{qid}: 샤드 하나의 쓰기 처리량은?", options={"A": "512KB/s", "B": "1MB/s", "C": "2MB/s", "D": "10MB/s"},
        answer=tuple(answer), explanations={"A": "너무 작다", "B": "맞다: 1MB/s", "C": "읽기 처리량이다", "D": "없다"},
        explanation="", headings=("Kinesis", "문제"), number=0,
    )
    return QuestionRecord(qid, "kinesis.md", "Kinesis 샤드", tags, question)


@dataclass
class FakeGenerated:
    question: Question
    id: str = "gen-123"
    missing: int = 1


@dataclass
class FakeWorkspace:
    """The Workspace methods the UI calls, with canned results."""

    tmp: Path
    status_value: Status = field(default_factory=lambda: Status(state="ready", notes=3, chunks=9, indexed=True,
                                                                 llm_state="ready", synced_at=time.time() - 3, changed=2))
    events: list = field(default_factory=list)
    records: list = field(default_factory=lambda: [record("q1"), record("q2", answer=("A", "C"))])
    llm_spec: str = "default"
    ollama_problem: str | None = None
    asked: list = field(default_factory=list)
    typed: list = field(default_factory=list)
    saved: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    reading_ahead: bool = False
    read_ahead_by_env: bool = False

    def __post_init__(self):
        self.history = History(self.tmp / "practice.sqlite")

    def status(self):
        return self.status_value

    def tags(self):
        return [("concept/streaming", 2), ("service/kinesis", 1)]

    def link(self, note):
        return f"obsidian://open?vault=notes&file={note}"

    def typing(self, text, history, tags):
        self.typed.append((text, list(history), tags))

    def ask(self, question, history, tags):
        self.asked.append((question, list(history), tuple(tags)))
        yield from self.events

    def llm_choices(self):
        return (["default"], self.ollama_problem) if self.ollama_problem else (["default", "ollama:qwen2.5:7b"], None)

    def read_ahead(self):
        return self.reading_ahead, self.read_ahead_by_env

    def set_read_ahead(self, on):
        self.reading_ahead = on

    def set_llm(self, spec):
        if spec.startswith("ollama:missing"):
            raise LLMError("Model missing is not pulled - run 'ollama pull missing'")
        self.llm_spec = spec
        return spec

    def quiz(self, tags=()):
        records = [r for r in self.records if not tags or set(tags) & set(r.tags)]
        return Quiz(lambda: records, self.tmp, self.history, n=None, rng=random.Random(1))

    def check(self, quiz, presented, chosen, seconds):
        return Workspace.check(self, quiz, presented, chosen, seconds)  # the real rule: unsaved ones are not recorded

    def scores(self):
        return Workspace.scores(self)  # the real aggregation over this fake's history

    @property
    def vault(self):
        return self.tmp

    def variant(self, rec, progress=None):
        return FakeGenerated(replace(rec.question, options={**rec.question.options, "D": "새 오답"}))

    def new_question(self, note, progress=None):
        return FakeGenerated(record("new").question, id="gen-new", missing=0)

    def as_record(self, made):
        return QuestionRecord(made.id, "kinesis.md", "Kinesis 샤드", ("service/kinesis",), made.question)

    def save(self, made):
        self.saved.append(made.id)

    def export(self, fmt, tags=()):
        out = self.tmp / ("q.apkg" if fmt == "anki" else "q.md")
        out.write_text("x")
        return out, len(self.records)

    def sync(self, progress=None):
        for stage, done, total in [("parse", 1, 2), ("parse", 2, 2), ("embed", 0, 4), ("embed", 4, 4), ("write", 1, 1)]:
            progress(stage, done, total)
        return type("Report", (), {"notes": 3, "chunks": 9, "changed": ["a.md"], "deleted": [], "seconds": 0.4})()

    def stale(self):
        item = type("Item", (), {"id": "gen-old", "question": record("x").question,
                                 "problems": ("kinesis.md › 처리량 changed",)})()
        return [] if "gen-old" in self.dropped else [item]

    def drop(self, item_id):
        self.dropped.append(item_id)
        return True

    def regenerate(self, item_id, progress=None):
        self.dropped.append(item_id)  # the stale item is replaced
        return FakeGenerated(record("x").question, id="gen-fresh", missing=0)


@pytest.fixture
def ws(tmp_path):
    return FakeWorkspace(tmp_path)


@pytest.fixture(autouse=True)
def quiet_toasts():
    """Outside a running app gr.Warning is a Python warning; tests read them where it matters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def answer(grounded=True, text="샤드 하나는 초당 1MB를 쓴다 [1]."):
    sources = [source(1), source(2, "s3.md", "S3")]
    return Answer("q", "q", text, grounded, sources[:1] if grounded else [], sources)


# -- chat ----------------------------------------------------------------------------------------

def test_sources_appear_before_the_answer_streams(ws):
    ws.events = [("sources", [source(1), source(2, "s3.md", "S3")]), ("token", "샤드 하나는 "), ("token", "초당 1MB [1]."),
                 ("done", answer())]
    updates = list(chat_tab.respond(ws, "샤드 처리량은?", [], ["service/kinesis"], "ko"))
    first_sources = next(i for i, u in enumerate(updates) if "src-card" in u[2])
    first_token = next(i for i, u in enumerate(updates) if "샤드 하나는" in u[0][-1]["content"])
    assert first_sources < first_token
    assert updates[0][0][-1]["content"] == TEXT["ko"]["searching"] and updates[0][3] == ""
    assert "obsidian://open?vault=notes&amp;file=kinesis" in updates[first_sources][2]
    messages, pairs, panel, _ = updates[-1]
    assert messages[-1]["content"] == "샤드 하나는 초당 1MB를 쓴다 [1]."
    assert pairs == [("샤드 처리량은?", "샤드 하나는 초당 1MB를 쓴다 [1].")]
    assert 'class="src-card src-cited"' in panel and TEXT["ko"]["cited"] in panel
    assert ws.asked == [("샤드 처리량은?", [], ("service/kinesis",))]


def test_follow_up_sends_the_history(ws):
    ws.events = [("sources", [source(1)]), ("done", answer())]
    list(chat_tab.respond(ws, "그럼 읽기는?", [("첫 질문", "첫 답")], [], "ko"))
    assert ws.asked[0][1] == [("첫 질문", "첫 답")]


def test_not_in_notes_is_a_labelled_box_with_the_closest_sections(ws):
    refusal = "Your notes don't cover this. The closest sections are listed below."
    ws.events = [("sources", [source(1)]), ("token", refusal), ("done", answer(grounded=False, text=refusal))]
    messages, _, panel, _ = list(chat_tab.respond(ws, "Azure Functions cold start?", [], [], "en"))[-1]
    assert 'id="not-in-notes"' in panel and "Not in your notes" in panel and "Kinesis 샤드" in panel
    assert messages[-1]["content"].startswith("> 📭 **Not in your notes**")


def test_a_model_error_is_a_readable_message_not_a_trace(ws):
    def failing(*_):
        yield "sources", [source(1)]
        raise LLMError("Ollama is not running at http://127.0.0.1:11434 - start it with 'ollama serve'")

    ws.ask = failing
    messages, pairs, panel, _ = list(chat_tab.respond(ws, "질문", [], [], "ko"))[-1]
    assert messages[-1]["content"] == "⚠️ Ollama is not running at http://127.0.0.1:11434 - start it with 'ollama serve'"
    assert pairs == [] and "src-card" in panel


def test_an_unexpected_error_points_at_the_terminal(ws, caplog):
    def broken(*_):
        raise KeyError("boom")
        yield

    ws.ask = broken
    messages = list(chat_tab.respond(ws, "question", [], [], "en"))[-1][0]
    assert "Something went wrong: KeyError: 'boom'" in messages[-1]["content"]
    assert "terminal" in messages[-1]["content"] and "Traceback" not in messages[-1]["content"]
    assert "Traceback" in caplog.text  # the details went to the terminal's log


def test_no_question_until_the_first_index_exists(ws):
    ws.status_value = Status(state="indexing", stage="embed", done=64, total=440)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        updates = list(chat_tab.respond(ws, "질문", [], [], "ko"))
    assert ws.asked == [] and updates[-1][3] == "질문"  # the question stays in the box
    assert "청크 임베딩 중 64/440" in str(caught[0].message)


def test_empty_question_is_refused(ws):
    assert list(chat_tab.respond(ws, "   ", [], [], "en"))[-1][1] == [] and ws.asked == []


def test_model_choices_say_when_ollama_is_down(ws):
    ws.ollama_problem = "Ollama is not running at http://127.0.0.1:11434 - start it with 'ollama serve'"
    update, note = chat_tab.model_choices(ws, "en")
    assert update["choices"] == [(TEXT["en"]["model_builtin"], "default")]
    assert "ollama serve" in note
    ws.ollama_problem = None
    update, note = chat_tab.model_choices(ws, "ko")
    assert ("Ollama · qwen2.5:7b", "ollama:qwen2.5:7b") in update["choices"] and "1개" in note


def test_a_model_that_cannot_load_keeps_the_old_one(ws):
    update, note = chat_tab.choose_model(ws, "ollama:missing", "en")
    assert update["value"] == "default" and ws.llm_spec == "default" and "ollama pull missing" in note
    update, note = chat_tab.choose_model(ws, "ollama:qwen2.5:7b", "en")
    assert update["value"] == ws.llm_spec == "ollama:qwen2.5:7b" and "Ollama · qwen2.5:7b" in note


def test_reading_ahead_is_a_choice_that_says_what_it_does_and_for_which_models(ws):
    assert "read sections while idle" not in chat_tab.choose_read_ahead(ws, True, "en")
    assert ws.reading_ahead and "reads note sections while idle" in chat_tab.choose_read_ahead(ws, True, "en")
    assert "tutor warm --clear" in chat_tab.choose_read_ahead(ws, False, "ko") and not ws.reading_ahead
    ws.llm_spec = "ollama:qwen2.5:7b"
    assert "Ollama · qwen2.5:7b reads each prompt anew" in chat_tab.choose_read_ahead(ws, True, "en")


def test_tag_filter_lists_services_first(ws):
    assert chat_tab.tag_choices(ws) == [("service/kinesis (1)", "service/kinesis"), ("concept/streaming (2)", "concept/streaming")]


# -- practice ------------------------------------------------------------------------------------

def first_question(ws, qid):
    """Next questions until `qid` is shown (the quiz order is random)."""
    session = practice_tab.new_session()
    for _ in range(4):
        out = practice_tab.next_question(ws, session, "", "en")
        session = out[0]
        if session["presented"].id == qid:
            return out
    raise AssertionError(f"{qid} never came up")


def test_one_answer_is_a_radio_several_are_checkboxes(ws):
    session, text, one, many, result, save = first_question(ws, "q1")
    assert one["visible"] and not many["visible"] and len(one["choices"]) == 4
    assert "Choose one answer" in text and "q1: 샤드" in text and result == "" and not save["visible"]
    session, text, one, many, *_ = first_question(ws, "q2")
    assert many["visible"] and not one["visible"] and "Select 2 (2개 선택)" in text


def test_checking_grades_explains_every_option_and_records_the_score(ws):
    session = first_question(ws, "q1")[0]
    presented = session["presented"]
    wrong = next(letter for letter in presented.letters if letter not in presented.answer)
    session, result, one, many, scores = practice_tab.check(ws, session, wrong, [], "ko")
    assert "❌ 아쉽네요 — 정답은 " + presented.answer[0] in result
    assert "맞다: 1MB/s" in result and "읽기 처리량이다" in result and "✗ 내 답" in result
    assert "obsidian://open?vault=notes&amp;file=kinesis.md" in result and "이번 세션: 0/1" in result
    assert one["interactive"] is False
    assert "kinesis" in scores and "0/1" in scores
    assert [a.question for a in ws.history.attempts(ws.tmp)] == ["q1"]
    again = practice_tab.check(ws, session, presented.answer[0], [], "ko")  # already graded: nothing recorded
    assert len(ws.history.attempts(ws.tmp)) == 1 and again[1]["__type__"] == "update"


def test_several_answers_need_exactly_that_many(ws):
    session = first_question(ws, "q2")[0]
    out = practice_tab.check(ws, session, None, ["A"], "en")
    assert out[0]["graded"] is False and ws.history.attempts(ws.tmp) == []
    session, result, *_ = practice_tab.check(ws, session, None, list(session["presented"].answer), "en")
    assert "✅ Correct" in result


def test_no_questions_for_a_service_says_what_to_do(ws):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = practice_tab.next_question(ws, practice_tab.new_session(), "service/athena", "en")
    assert out[1]["__type__"] == "update" and "관련 문제" in str(caught[0].message)


def test_a_round_ends_and_starts_again(ws):
    session = practice_tab.new_session()
    for _ in range(3):
        session, text, *_ = practice_tab.next_question(ws, session, "", "en")
    assert TEXT["en"]["round_done"] in text


def finished(updates):
    """The last of a streaming handler's updates: what the page shows once it is done."""
    return list(updates)[-1]


def test_new_variant_is_shown_graded_and_saved(ws):
    session = first_question(ws, "q1")[0]
    session, text, one, many, result, save = finished(practice_tab.generate(ws, session, "variant", "en"))
    assert "✨ Generated" in text and "새 오답" in str(one["choices"]) and save["visible"]
    assert "1 wrong option(s) did not pass the checks" in text
    letter = next(v for label, v in one["choices"] if "새 오답" in label)
    session, result, *_ = practice_tab.check(ws, session, letter, [], "en")
    assert "새 오답" in result and ws.history.attempts(ws.tmp) == []  # unsaved: graded, not recorded
    session, button = practice_tab.save(ws, session, "en")
    assert ws.saved == ["gen-123"] and button["visible"] is False and session["saved"]


def test_a_failed_generation_keeps_the_question_and_says_why(ws):
    class GenerationError(Exception):
        pass

    def fail(_record, progress=None):
        raise GenerationError("No usable question after 3 tries. Try another --heading, or a larger model with --llm.")

    ws.variant = fail
    session = first_question(ws, "q1")[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session, text, one, many, result, save = finished(practice_tab.generate(ws, session, "variant", "en"))
    assert result == "" and text["__type__"] == "update" and session["presented"].id == "q1"
    assert "larger model" in str(caught[0].message)


def test_new_question_from_the_note(ws):
    session = first_question(ws, "q1")[0]
    session, text, *_ = finished(practice_tab.generate(ws, session, "question", "en"))
    assert "New question from Kinesis 샤드" in text and session["generated"].id == "gen-new"


def test_generating_shows_the_running_log_while_the_model_works(ws):
    release, make = threading.Event(), ws.variant

    def variant(rec, progress=None):
        progress(Progress("call", call=1, most=3))
        progress(Progress("rejected", "1MB/s", "restates the correct option '1MB/s' (same words)", call=1))
        progress(Progress("accepted", "<새 오답>", call=1))
        assert release.wait(10), "the page saw nothing while the model worked"
        progress(Progress("end", call=1))
        return make(rec)

    ws.variant = variant
    session = first_question(ws, "q1")[0]
    updates = practice_tab.generate(ws, session, "variant", "en")
    shown = [next(updates) for _ in range(3)]  # the model is still at work
    session_now, text, one, many, log, save = shown[-1]
    assert session_now is session and text["__type__"] == "update" and save["__type__"] == "update"
    assert "Model call 1 (at most 3)…" in log and "✗ 1MB/s — restates the correct option &#x27;1MB/s&#x27;" in log
    assert "✓ &lt;새 오답&gt;" in log and "Model call" in shown[0][4] and "✓" not in shown[0][4]
    release.set()
    *_, (session, text, one, many, result, save) = updates
    assert "✨ Generated" in text and result == "" and session["generated"].id == "gen-123"


def test_the_korean_log_says_in_korean_why_an_option_was_rejected():
    rejected = Progress("rejected", "1MB/s", "restates the correct option '1MB/s' (same words)", call=1,
                        why="correct", of="1MB/s")
    assert "✗ 1MB/s — 정답 보기 &#x27;1MB/s&#x27;와 같은 말" in render.generation_log("ko", [rejected])
    assert "restates the correct option" in render.generation_log("en", [rejected])
    junk = Progress("rejected", "", "the answer was not valid JSON for the form: x", call=1, why="invalid")
    assert "✗ 모델의 답이 정해진 JSON 형식이 아님" in render.generation_log("ko", [junk])


def test_export_offers_the_file(ws):
    update = practice_tab.export(ws, "anki", "", "en")
    assert update["value"].endswith("q.apkg") and update["visible"]


# -- notes ---------------------------------------------------------------------------------------

def test_reindex_moves_the_bar_through_the_stages(ws):
    seen = []
    card, problems, stale, pick, actions = notes_tab.reindex(ws, "en", progress=lambda fraction, desc: seen.append((fraction, desc)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("reading 2/2 notes" in d for _, d in seen) and any("embedding 4/4 chunks" in d for _, d in seen)
    assert 'id="index-card"' in card and ">3<" in card and ">9<" in card


def test_skipped_notes_and_stale_questions_are_listed(ws):
    ws.status_value = replace(ws.status_value, skipped=[{"path": "bin.md", "reason": "binary file"}],
                              warnings=[{"path": "y.md", "warning": "broken YAML frontmatter"}])
    card, problems, stale, pick, actions = notes_tab.panels(ws, "ko")
    assert "bin.md" in problems and "binary file" in problems and "broken YAML" in problems
    assert "gen-old" in stale and "처리량 changed" in stale and pick["value"] == "gen-old" and actions["visible"]
    card, problems, stale, pick, actions = notes_tab.drop(ws, "gen-old", "ko")
    assert ws.dropped == ["gen-old"] and TEXT["ko"]["stale_none"] in stale and pick["value"] is None
    assert actions["visible"] is False


def test_regenerating_a_stale_question_shows_the_running_log_then_the_panels(ws):
    release, make = threading.Event(), ws.regenerate

    def regenerate(item_id, progress=None):
        progress(Progress("call", call=1, most=3))
        progress(Progress("rejected", "1MB/s", "restates the correct option '1MB/s' (same words)", call=1))
        assert release.wait(10), "the page saw nothing while the model worked"
        return make(item_id)

    ws.regenerate = regenerate
    updates = notes_tab.regenerate(ws, "gen-old", "en")
    card, problems, log, pick, actions = [next(updates) for _ in range(2)][-1]  # the model is still at work
    assert card["__type__"] == "update" and pick["__type__"] == "update"
    assert "Model call 1 (at most 3)…" in log and "✗ 1MB/s — restates the correct option" in log
    release.set()
    *_, (card, problems, stale, pick, actions) = updates
    assert ws.dropped == ["gen-old"] and TEXT["en"]["stale_none"] in stale and actions["visible"] is False


def test_regenerating_nothing_picked_says_pick_one(ws):
    with pytest.warns(UserWarning, match=TEXT["en"]["pick_stale"]):
        (card, problems, stale, pick, actions), = notes_tab.regenerate(ws, None, "en")
    assert "gen-old" in stale and ws.dropped == []


# -- status, language, the page ------------------------------------------------------------------

def test_status_line_says_what_the_index_is_doing():
    now = time.time()
    ready = Status(state="ready", notes=32, chunks=440, synced_at=now - 3, changed=2, indexed=True, llm_state="ready")
    assert "Up to date — 32 notes · 440 chunks — 2 notes changed 3 s ago" in render.status_line("en", ready, now)
    assert "1 note changed 3 s ago" in render.status_line("en", replace(ready, changed=1), now)
    assert "Built-in · Qwen2.5-Coder 1.5B" in render.status_line("en", ready, now)
    assert "최신 상태 — 노트 32개 · 청크 440개 — 3초 전 노트 2개 반영" in render.status_line("ko", ready, now)
    syncing = replace(ready, state="syncing", stage="embed", done=64, total=120)
    assert "Syncing: embedding 64/120 chunks" in render.status_line("en", syncing, now)
    first = Status(state="indexing", stage="model", done=0.4, total=1)
    assert "Indexing your notes: preparing the embedding model 40%" in render.status_line("en", first, now)
    assert 'id="kept"' not in render.status_line("en", ready, now)  # sections are not kept
    assert "120/440 sections read ahead" in render.status_line("en", replace(ready, kept=120), now)
    assert "미리 읽은 섹션 440/440" in render.status_line("ko", replace(ready, kept=443), now)  # 3 since edited
    page = render.status_line("en", replace(ready, kept=120), now) + render.index_card("en", replace(ready, kept=120))
    assert page.count('id="kept"') == page.count('id="index-state"') == 1  # ids once in the page
    assert page.count("120/440 sections read ahead") == 1  # the notes tab no longer repeats the header
    broken = replace(ready, state="error", error="Notes folder /x does not exist - pass --notes DIR")
    assert "pill-error" in render.status_line("en", broken, now) and "pass --notes DIR" in render.status_line("en", broken, now)


def test_language_follows_the_browser():
    assert lang_of("ko-KR,ko;q=0.9,en-US;q=0.8") == "ko"
    assert lang_of("en-US,en;q=0.9,ko;q=0.8") == "en"
    assert lang_of("fr-FR") == "en" and lang_of(None) == "en"
    assert set(TEXT["ko"]) == set(TEXT["en"])


def test_note_text_is_escaped():
    evil = replace(source(1), title="<script>alert(1)</script>", text="<img src=x onerror=alert(1)>")
    html = render.sources_panel("en", sources=[evil])
    assert "<script>" not in html and "<img" not in html and "&lt;script&gt;" in html


def test_create_app_builds_without_serving(ws):
    from ui.app import create_app

    app = create_app(ws)
    ids = {block.elem_id for block in app.blocks.values() if getattr(block, "elem_id", None)}
    assert {"chat", "question", "sources", "answer-one", "answer-many", "check", "reindex", "status"} <= ids
    assert app.tutor_i18n.translations["ko"]["tab_chat"] == TEXT["ko"]["tab_chat"]
    assert not app.is_running


def test_typing_a_question_hands_it_to_the_workspace(ws):
    from ui.app import create_app

    app = create_app(ws)
    typing = next(f for f in app.fns.values() if f.fn.__name__ == "typing_fn")
    assert [t.elem_id for t in typing.inputs][0] == "question" and not typing.queue
    typing.fn("Kinesis 샤드", [], ["service/kinesis"])
    assert ws.typed == [("Kinesis 샤드", [], ("service/kinesis",))]


def test_cli_imports_nothing_heavy():
    code = "import sys\nfrom tutor.cli import cli\nprint(sorted({'numpy', 'torch', 'gradio'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_ui_command_says_what_is_wrong(tmp_path):
    from click.testing import CliRunner

    from tutor.cli import cli

    result = CliRunner().invoke(cli, ["ui", "--notes", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "does not exist - pass --notes DIR" in result.output
    result = CliRunner().invoke(cli, ["ui", "--notes", str(tmp_path), "--llm", "gpt:4"])
    assert result.exit_code == 1 and "Unknown model 'gpt:4'" in result.output


def test_page_load_speaks_the_browsers_language(ws):
    from types import SimpleNamespace

    from ui.app import create_app

    app = create_app(ws)
    handlers = {block_fn.fn.__name__: block_fn.fn for block_fn in app.fns.values()}
    lang, status, tags, *_ = handlers["on_load"](SimpleNamespace(headers={"accept-language": "ko-KR,ko;q=0.9"}))
    assert lang == "ko" and "최신 상태 — 노트 3개" in status and ("service/kinesis (1)", "service/kinesis") in tags
    status, seen, chat_tags, practice_tags, card = handlers["tick"]("en", tags)
    assert "Up to date" in status and chat_tags == {"__type__": "update"} and 'id="index-card"' in card
