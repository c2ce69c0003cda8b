"""`tutor eval` on a tiny vault with the fake embedder and fake chat models with queued replies."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from pydantic import Field

from index.embedder import get_embedder
from index.home import index_dir
from index.store import Store
from index.sync import sync
from tests.conftest import REPO, write_note
from tutor.cli import cli
from tutor.evaluate import evaluate_retrieval, first_rank, summarize
from tutor.evaluate_mc import ExamFileError, Item, evaluate_mc, load_exam, prompt, vault_items
from tutor.llm import LLMError
from tutor.retrieve import Retriever

EXAM = REPO / "tests" / "fixtures" / "exam.jsonl"


def question_block(stem: str, options: dict[str, str], key: str, explanation: str) -> str:
    lines = [f"**Question:** {stem}", "", "**Options:**", ""]
    lines += [f"- {letter}) {text}" for letter, text in options.items()]
    lines += ["", f"**정답: {key}) {options[key]}**", "", "💡 추가 설명:", "", f"- {explanation}"]
    return "\n".join(lines)


@pytest.fixture
def vault(tmp_path, fake_embedder):
    """kinesis.md explains its question's topic; orphan.md holds nothing but its question."""
    root = tmp_path / "vault"
    write_note(root, "kinesis.md", "kinesis", {
        "샤드": "Kinesis Data Streams 샤드 하나는 초당 1MB 쓰기를 받는다. 파티션 키가 샤드를 고른다.",
        "📝 관련 문제": question_block(
            "How much data per second can one Kinesis Data Streams shard ingest?",
            {"A": "1 MB per second", "B": "10 MB per second"}, "A", "SECRET-KINESIS-EXPLANATION 쓰기 한도"),
    }, tags=("service/kinesis",))
    write_note(root, "orphan.md", "orphan", {
        "📝 관련 문제": question_block(
            "Which Glue feature remembers the data a job run has already processed?",
            {"A": "Job bookmarks", "B": "Crawlers"}, "A", "SECRET-ORPHAN-EXPLANATION"),
    }, tags=("service/glue",))
    write_note(root, "glue.md", "glue", {"ETL": "AWS Glue 크롤러가 Data Catalog 테이블을 만든다."},
               tags=("service/glue",))
    sync(root, Store(index_dir(root)), get_embedder())
    return root


@pytest.fixture
def retriever(vault):
    return Retriever(vault)


def replies(*texts: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(t) for t in texts]))


class RecordingChat(GenericFakeChatModel):
    """Queued replies, and every message list it was sent."""

    sent: list = Field(default_factory=list)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.sent.append(messages)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)


# -- retrieval metrics -------------------------------------------------------------------------

def test_metrics_from_known_ranks():
    assert summarize([1, 2, None, 5, 6], k=5) == {
        "recall@1": 0.2, "recall@5": 0.6, "mrr": pytest.approx((1 + 1 / 2 + 1 / 5) / 5), "n": 5}
    assert summarize([3, 4], k=3) == {"recall@1": 0.0, "recall@3": 0.5, "mrr": pytest.approx(1 / 6), "n": 2}
    assert summarize([], k=5) == {"recall@1": None, "recall@5": None, "mrr": None, "n": 0}


def test_first_rank_is_the_first_hit_from_the_note(retriever):
    hits = retriever.search("Kinesis 샤드 쓰기", k=3, mode="lexical")
    assert first_rank(hits, "kinesis.md") == 1
    assert first_rank(hits, "nowhere.md") is None


def test_own_question_block_is_excluded(retriever):
    """orphan.md holds only its question: found at rank 1 if its own block were searchable."""
    records = retriever.store.questions()
    assert [r.note for r in records] == ["kinesis.md", "orphan.md"]
    report = evaluate_retrieval(retriever, records, k=5)
    for mode, metrics in report.items():
        assert metrics["n"] == 2
        assert metrics["recall@5"] == 0.5, mode  # kinesis.md's explanation found, orphan.md never
    assert report["lexical"]["recall@1"] == 0.5 and report["lexical"]["mrr"] == 0.5


# -- multiple choice ---------------------------------------------------------------------------

def test_valid_wrong_and_junk_replies_are_scored_not_crashed(retriever):
    kinesis, orphan = vault_items(retriever.store.questions())
    two = Item("two", "Pick two", {"A": "a", "B": "b", "C": "c", "D": "d"}, ("B", "C"))
    model = replies('{"answer": ["A"]}', "I think it is A", '{"answer": ["B", "D"]}')
    result = evaluate_mc(model, [kinesis, orphan, two], retriever, k=3)
    assert result["n"] == 3 and result["invalid"] == 1
    assert result["accuracy"] == pytest.approx(1 / 3)
    assert result["partial"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert result["seconds_per_question"] >= 0


@pytest.mark.parametrize("reply", ['{"answer": ["A", "B"]}', '{"answer": ["Z"]}', '{"answer": []}', "```json\n{}\n```"])
def test_replies_breaking_the_schema_are_invalid(reply):
    single = Item("one", "Pick one", {"A": "a", "B": "b"}, ("A",))
    assert evaluate_mc(replies(reply), [single])["invalid"] == 1


def test_model_sees_notes_but_never_the_key(retriever):
    kinesis = vault_items(retriever.store.questions())[0]
    model = RecordingChat(messages=iter([AIMessage('{"answer": ["A"]}')] * 2))
    evaluate_mc(model, [kinesis], retriever, k=5)
    evaluate_mc(model, [kinesis], None)
    with_notes, closed = ("\n".join(m.content for m in sent) for sent in model.sent)
    assert "1MB 쓰기를 받는다" in with_notes and "Choose exactly 1 option." in with_notes
    assert "SECRET-ORPHAN-EXPLANATION" in with_notes  # other questions' blocks are fair context
    assert "SECRET-KINESIS-EXPLANATION" not in with_notes and "정답: A) 1 MB" not in with_notes
    assert "1MB" not in closed and kinesis.stem in closed


def test_a_budget_cuts_the_notes_as_chat_does(retriever):
    from tutor.chat import estimate_tokens

    kinesis = vault_items(retriever.store.questions())[0]
    model = RecordingChat(messages=iter([AIMessage('{"answer": ["A"]}')] * 2))
    whole = evaluate_mc(model, [kinesis], retriever, k=5)
    budget = 50
    cut = evaluate_mc(model, [kinesis], retriever, k=5, budget=budget)
    whole_notes, cut_notes = (sent[-1].content.split("\n\nQuestion:")[0] for sent in model.sent)
    assert whole["accuracy"] == cut["accuracy"] == 1.0 and cut["budget"] == budget and whole["budget"] is None
    assert estimate_tokens(whole_notes) > budget and len(cut_notes) < len(whole_notes)
    cut_blocks = cut_notes.split("\n", 1)[1].split("\n\n")
    assert cut_blocks and estimate_tokens("\n\n".join(cut_blocks)) <= budget + 5 * len(cut_blocks)
    for block in cut_blocks:  # each a retrieved section, whole or its beginning
        assert block.split("\n", 1)[1].removesuffix(" …") in whole_notes


def test_select_two_asks_for_two():
    two = Item("two", "Pick two", {"A": "a", "B": "b", "C": "c"}, ("A", "C"))
    assert "Choose exactly 2 options." in prompt(two, None)[-1].content


def test_a_backend_failure_is_not_counted_as_an_invalid_answer():
    class Down(GenericFakeChatModel):
        def _generate(self, *args, **kwargs):
            raise LLMError("Ollama is not running at http://127.0.0.1:11434 - start it with 'ollama serve'")

    with pytest.raises(LLMError, match="ollama serve"):
        evaluate_mc(Down(messages=iter([])), [Item("one", "Pick", {"A": "a", "B": "b"}, ("A",))])


# -- external question files -------------------------------------------------------------------

def test_fixture_exam_loads():
    items = load_exam(EXAM)
    assert len(items) == 6 and len({i.id for i in items}) == 6
    assert next(i for i in items if i.id == "athena-scan").answer == ("A", "B")
    assert all(i.exclude == () for i in items)


GOOD = '{"id": "q1", "question": "Which?", "options": {"A": "x", "B": "y"}, "answer": ["A"]}'


@pytest.mark.parametrize("bad, problem", [
    ("{not json", "Invalid JSON"),
    ('{"id": "q2", "question": "Which?", "options": {"A": "x", "B": "y"}}', "answer: Field required"),
    ('{"id": "q2", "question": "Which?", "options": {"A": "x", "B": "y"}, "answer": ["C"]}', "answer C is not among"),
    ('{"id": "q2", "question": "Which?", "options": {"a": "x", "b": "y"}, "answer": ["a"]}', "capital letters"),
    ('{"id": "q2", "question": "Which?", "options": {"A": "x", "B": "y"}, "answer": ["A", "B"]}', "nothing to choose"),
    (GOOD, "id 'q1' is already used on line 1"),
])
def test_bad_exam_lines_name_the_line_and_problem(tmp_path, bad, problem):
    path = tmp_path / "exam.jsonl"
    path.write_text(GOOD + "\n\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(ExamFileError, match="line 3") as error:
        load_exam(path)
    assert problem in str(error.value)


def test_empty_exam_is_refused(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(ExamFileError, match="holds no questions"):
        load_exam(tmp_path / "empty.jsonl")


# -- the command -------------------------------------------------------------------------------

def test_cli_json_without_llm(vault):
    report = json.loads(invoke("eval", "--notes", vault, "--no-llm", "--json").output)
    assert report["multiple_choice"] is None and report["external"] is None
    for part in ("retrieval", "retrieval_with_options"):
        assert set(report[part]) == {"dense", "lexical", "hybrid"}
        for metrics in report[part].values():
            assert set(metrics) == {"recall@1", "recall@5", "mrr", "n"} and metrics["n"] == 2
    assert report["retrieval"]["hybrid"]["recall@5"] == 0.5


def test_cli_json_with_a_model(vault, monkeypatch):
    monkeypatch.setattr("tutor.llm.get_chat_model", lambda spec, **opts: replies('{"answer": ["A"]}', "junk"))
    report = json.loads(invoke("eval", "--notes", vault, "--json", "--k", "3").output)
    assert set(report["retrieval"]["dense"]) == {"recall@1", "recall@3", "mrr", "n"}
    assert report["multiple_choice"] == {
        "accuracy": 0.5, "partial": 0.5, "invalid": 1, "n": 2,
        "seconds_per_question": report["multiple_choice"]["seconds_per_question"], "budget": None,
    }


def test_cli_external_questions_with_and_without_notes(vault, monkeypatch):
    answers = ['{"answer": ["C"]}', '{"answer": ["C"]}', '{"answer": ["B"]}', '{"answer": ["A", "B"]}',
               '{"answer": ["A"]}', '{"answer": ["A"]}']
    monkeypatch.setattr("tutor.llm.get_chat_model", lambda spec, **opts: replies(*answers, *(["nonsense"] * 6)))
    report = json.loads(invoke("eval", "--notes", vault, "--questions", EXAM, "--json").output)
    assert report["multiple_choice"] is None
    assert report["external"]["with_notes"]["accuracy"] == 1.0 and report["external"]["with_notes"]["n"] == 6
    assert report["external"]["closed_book"]["invalid"] == 6


def test_cli_table_says_what_was_excluded(vault):
    out = invoke("eval", "--notes", vault, "--no-llm").output
    assert "own 📝 관련 문제 section is excluded" in out
    assert "recall@5" in out and "hybrid" in out


def test_cli_errors_say_what_to_do(vault, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", "--notes", str(vault), "--questions", str(bad)])
    assert result.exit_code == 1 and "line 1" in result.output and "Each line must be one JSON object" in result.output
    result = CliRunner().invoke(cli, ["eval", "--notes", str(vault), "--questions", str(EXAM), "--no-llm"])
    assert result.exit_code == 2 and "drop --no-llm" in result.output
    result = CliRunner().invoke(cli, ["eval", "--notes", str(tmp_path / "unindexed"), "--no-llm"])
    assert result.exit_code == 1 and "tutor index --notes" in result.output
