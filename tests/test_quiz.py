"""Practice: shuffled presentation, grading through the shuffle, the schedule, stats, `tutor quiz`."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from index.note import QuestionRecord, question_id
from index.parse import parse_note
from tests.conftest import REPO, write_note
from tutor.cli import cli
from tutor.practice.history import Attempt, History
from tutor.practice.quiz import InvalidAnswer, Quiz, grade, merged, parse_letters, present

MULTI = """**Question:** A team keeps raw logs cheaply and runs nightly Spark jobs over them. Which services fit? (Select 2)

**Options:**

- A) Amazon S3
- B) AWS Glue
- C) Amazon EMR
- D) Amazon Kinesis Data Firehose
- E) AWS Data Pipeline

**정답: A) Amazon S3, C) Amazon EMR**

💡 추가 설명:

- **AWS Glue** - ETL 서비스로 변환에 쓰이지만 직접 운영하는 Spark 클러스터 요구와는 다르다
- **Amazon Kinesis Data Firehose** - 스트림을 목적지로 전달하는 서비스라 야간 배치 처리 엔진이 아니다
- **AWS Data Pipeline** - 신규 고객에게 더 이상 제공되지 않는 워크플로 도구다
"""
SINGLE = """**Question:** Which service stores objects?

**Options:**

- A) Amazon S3
- B) Amazon EBS
- C) Amazon EFS

**정답: A) Amazon S3**

💡 추가 설명:

- **Amazon EBS** - 블록 스토리지
- **Amazon EFS** - 파일 스토리지
"""
T0 = datetime(2025, 8, 20, 9, 0, tzinfo=timezone.utc)


def records_of(text: str, path: str) -> list[QuestionRecord]:
    note = parse_note(text, path)
    return [QuestionRecord(question_id(path, q.number), path, note.title, note.tags, q) for q in note.questions]


@pytest.fixture
def seed_record() -> QuestionRecord:  # a "Select 2" question in the seed's shape: answer A, C
    return records_of("# 배치\n\n## 📝 관련 문제\n\n" + MULTI, "batch.md")[0]


@pytest.fixture
def single_record() -> QuestionRecord:
    return records_of(f"---\ntags: [service/s3]\n---\n# S3\n\n## 📝 관련 문제\n\n{SINGLE}", "s3.md")[0]


def shuffled(record: QuestionRecord):
    """The first presentation whose order differs from the note's: the mapping is really tested."""
    for seed in range(50):
        presented = present(record, random.Random(seed))
        if presented.order != tuple(record.question.options):
            return presented
    raise AssertionError("no shuffle in 50 seeds")


def test_present_relabels_a_permutation_and_maps_both_ways(seed_record):
    for seed in range(10):
        p = present(seed_record, random.Random(seed))
        assert sorted(p.order) == sorted(seed_record.question.options) and p.letters == tuple("ABCDE")
        for shown, text in p.options:
            assert seed_record.question.options[p.original(shown)] == text and p.shown(p.original(shown)) == shown
        assert sorted(p.original(a) for a in p.answer) == list(seed_record.question.answer)
    assert p.select == 2 and p.source == "batch.md › 배치 › 📝 관련 문제"


def test_grade_single_answer_shows_the_original_options_explanation(single_record):
    p = shuffled(single_record)
    wrong = grade(p, [p.shown("B")])
    assert not wrong.correct and wrong.wrong == (p.shown("B"),) and wrong.missed == (p.shown("A"),)
    verdict = next(o for o in wrong.options if o.letter == p.shown("B"))
    assert (verdict.original, verdict.text, verdict.status) == ("B", "Amazon EBS", "wrong")
    assert verdict.explanation == single_record.question.explanations["B"] == "블록 스토리지"
    assert wrong.chosen_original == ("B",)
    right = grade(p, [p.shown("A").lower()])
    assert right.correct and right.chosen_original == ("A",) and not right.missed and not right.wrong


def test_grade_multiple_answers_is_all_or_nothing(seed_record):
    p = shuffled(seed_record)
    half = grade(p, [p.shown("A"), p.shown("B")])
    assert not half.correct and half.missed == (p.shown("C"),) and half.wrong == (p.shown("B"),)
    assert half.chosen_original == ("A", "B")
    assert next(o for o in half.options if o.original == "B").explanation.startswith("ETL 서비스")
    assert not grade(p, [p.shown("A")]).correct
    assert grade(p, [p.shown("C"), p.shown("A")]).correct
    with pytest.raises(InvalidAnswer):
        grade(p, ["Z"])


@pytest.mark.parametrize("typed", ["A C", "a,c", "AC", " c ; a ", "c/a", "a, c"])
def test_parse_letters_accepts_the_usual_ways_of_typing(seed_record, typed):
    assert parse_letters(typed, present(seed_record, random.Random(0))) == ("A", "C")


@pytest.mark.parametrize("typed, says", [("Z", "'Z' is not an option"), ("A", "Choose 2 letters"),
                                          ("A B C", "Choose 2 letters"), ("", "Choose 2"), ("1 2", "'1'")])
def test_parse_letters_rejects_with_what_to_type(seed_record, typed, says):
    with pytest.raises(InvalidAnswer, match=says) as error:
        parse_letters(typed, present(seed_record, random.Random(0)))
    assert "A-E" in str(error.value)


def attempt(qid: str, correct: bool, at: datetime, tags=("service/s3",), chosen=None) -> Attempt:
    return Attempt(qid, tags, chosen or (("A",) if correct else ("B",)), ("A",), 3.0, at)


def test_a_wrong_answer_comes_back_before_a_right_one(tmp_path):
    history, vault = History(tmp_path / "p.sqlite"), tmp_path / "vault"
    wrong_due = history.record(vault, attempt("wrong#1", False, T0))
    right_due = history.record(vault, attempt("right#1", True, T0))
    assert T0 < wrong_due < right_due
    ids = ["right#1", "new#1", "wrong#1"]
    assert history.queue(vault, ids, T0 + timedelta(minutes=5)) == ["wrong#1", "new#1", "right#1"]
    assert history.queue(vault, ids, T0 + timedelta(days=1)) == ["wrong#1", "right#1", "new#1"]  # most overdue first
    assert history.queue(tmp_path / "other-vault", ids, T0 + timedelta(days=1)) == ids  # keyed by vault


def test_quiz_asks_due_then_new_then_the_rest_and_records(tmp_path, seed_record, single_record):
    history, vault = History(tmp_path / "p.sqlite"), tmp_path / "vault"
    history.record(vault, attempt(single_record.id, False, T0))
    session = Quiz(lambda: [seed_record, single_record], vault, history, n=5,
                   rng=random.Random(1), clock=lambda: T0 + timedelta(minutes=5))
    first = session.next()
    assert first.id == single_record.id  # due (missed a minute ago) before the new one
    session.submit(first, first.answer, 4.0)
    assert session.next().id == seed_record.id and session.next() is None  # never the same one twice
    assert history.stats(vault)["by_question"][single_record.id]["attempts"] == 2
    assert History(tmp_path / "p.sqlite").attempts(vault)[-1].chosen == ("A",)  # the note's letter, persisted


def test_quiz_stops_after_n(tmp_path, seed_record, single_record):
    session = Quiz(lambda: [seed_record, single_record], tmp_path, History(tmp_path / "p.sqlite"), n=1)
    assert session.next() is not None and session.next() is None


def test_stats_by_tag_question_and_wrong_choices(tmp_path):
    history, vault = History(tmp_path / "p.sqlite"), tmp_path / "vault"
    history.record(vault, attempt("s3#1", True, T0, tags=("service/s3",)))
    history.record(vault, attempt("s3#1", False, T0 + timedelta(hours=1), tags=("service/s3",), chosen=("C",)))
    history.record(vault, attempt("emr#1", False, T0, tags=("service/emr", "service/s3")))
    stats = history.stats(vault)
    assert stats["by_tag"]["service/s3"] == {"attempts": 3, "correct": 1, "accuracy": pytest.approx(1 / 3)}
    assert stats["by_tag"]["service/emr"] == {"attempts": 1, "correct": 0, "accuracy": 0.0}
    s3 = stats["by_question"]["s3#1"]
    assert (s3["attempts"], s3["correct"], s3["accuracy"], s3["wrong_choices"]) == (2, 1, 0.5, {"C": 1})
    assert stats["by_question"]["emr#1"]["wrong_choices"] == {"B": 1}
    assert stats["total"] == {"attempts": 3, "correct": 1, "accuracy": pytest.approx(1 / 3), "questions": 2}
    assert history.stats(tmp_path / "elsewhere")["total"]["attempts"] == 0


def test_questions_gone_from_the_vault_stay_in_history_but_are_not_asked(tmp_path, seed_record):
    history, vault = History(tmp_path / "p.sqlite"), tmp_path / "vault"
    history.record(vault, attempt("deleted-note#1", False, T0))
    session = Quiz(lambda: [seed_record], vault, history, clock=lambda: T0 + timedelta(days=3))
    assert session.next().id == seed_record.id and session.next() is None
    assert "deleted-note#1" in history.stats(vault)["by_question"]


def test_merged_sources_keep_the_first_of_an_id(seed_record, single_record):
    generated = QuestionRecord("gen-1", "batch.md", "batch", (), single_record.question)
    clash = QuestionRecord(seed_record.id, "other.md", "other", (), single_record.question)
    records = merged(lambda: [seed_record], lambda: [clash, generated])()
    assert [r.id for r in records] == [seed_record.id, "gen-1"] and records[0].note == "batch.md"


def test_practice_commands_import_nothing_heavy():
    code = ("import sys, tutor.cli_practice; "
            "print(sorted({'numpy', 'torch', 'faiss', 'fsrs', 'genanki'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- tutor quiz


@pytest.fixture
def vault(tmp_path, fake_embedder):
    root = tmp_path / "vault"
    root.mkdir()
    write_note(root, "batch.md", "batch-note", {"📝 관련 문제": MULTI}, tags=("service/emr",))
    write_note(root, "s3.md", "s3-note", {"📝 관련 문제": SINGLE}, tags=("service/s3",))
    assert CliRunner().invoke(cli, ["index", "--notes", str(root)]).exit_code == 0
    return root


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


@pytest.mark.parametrize("as_json", [False, True])
def test_cli_quiz_grades_one_right_one_wrong_and_remembers(vault, tmp_path, as_json):
    from tutor.cli_practice import question_source

    preview = Quiz(question_source(vault), vault, History(tmp_path / "preview.sqlite"), n=2, rng=random.Random(5))
    first, second = preview.next(), preview.next()
    wrong = next(letter for letter in second.letters if letter not in second.answer)
    wrong_pick = [wrong, *second.answer[: second.select - 1]]  # one wrong letter spoils the answer
    typed = ["Z", " ".join(first.answer).lower(), ",".join(wrong_pick).lower()]
    result = invoke("quiz", "--notes", vault, "--n", 2, "--seed", 5, *(["--json"] if as_json else []),
                    input="\n".join(typed) + "\n")
    assert result.exit_code == 0, result.output
    assert "Error: 'Z' is not an option" in result.output  # re-asked, not graded
    assert "✓ Correct" in result.output and "✗ Wrong" in result.output and "Score: 1/2" in result.output
    assert f"Source: {second.source}" in result.output
    multi = first if first.select > 1 else second
    assert "Select 2 / 2개 선택" in result.output and multi.stem in result.output
    for letter in set(wrong_pick) - set(second.answer):  # the note's explanation of the chosen wrong option
        assert second.record.question.explanations[second.original(letter)] in result.output
    saved = {a.question: a for a in History().attempts(vault)}
    assert saved[first.id].correct and saved[first.id].chosen == first.record.question.answer
    assert not saved[second.id].correct
    assert saved[second.id].chosen == tuple(sorted(second.original(x) for x in wrong_pick))
    if as_json:
        summary = json.loads(result.stdout)
        assert (summary["asked"], summary["correct"]) == (2, 1)
        assert [r["id"] for r in summary["results"]] == [first.id, second.id]


def test_cli_quiz_list_json_shape(vault):
    records = {r["id"]: r for r in json.loads(invoke("quiz", "--notes", vault, "--list", "--json").output)}
    assert set(records) == {"batch#1", "s3#1"}
    assert records["batch#1"]["answers"] == 2 and records["s3#1"]["title"] == "s3-note"
    assert records["s3#1"]["status"] == "new" and records["s3#1"]["accuracy"] is None
    invoke("quiz", "--notes", vault, "--n", 2, input="q\n")  # stopped before answering: nothing recorded
    quit_early = json.loads(invoke("quiz", "--notes", vault, "--list", "--json").output)
    assert [r["status"] for r in quit_early] == ["new", "new"]
    invoke("quiz", "--notes", vault, "--n", 1, "--tag", "service/emr", input="d e\n")  # only batch.md has emr
    answered = json.loads(invoke("quiz", "--notes", vault, "--list", "--json").output)
    batch = next(r for r in answered if r["id"] == "batch#1")
    assert set(batch) == {"id", "title", "note", "answers", "attempts", "correct", "accuracy", "due", "status"}
    assert batch["attempts"] == 1 and batch["due"] is not None and batch["status"] in ("due", "later")
    human = invoke("quiz", "--notes", vault, "--list").output
    assert human.splitlines()[0].startswith("batch#1") and "2 answers" in human and "new" in human


def test_cli_quiz_without_an_index_says_what_to_run(tmp_path):
    result = CliRunner().invoke(cli, ["quiz", "--notes", str(tmp_path / "v")])
    assert result.exit_code == 1 and f"run 'tutor index --notes {tmp_path / 'v'}'" in result.output


def test_cli_quiz_with_no_questions_says_how_to_add_one(tmp_path, fake_embedder):
    write_note(tmp_path / "v", "plain.md", "plain", {"핵심": "문제 없음"})
    invoke("index", "--notes", tmp_path / "v")
    result = CliRunner().invoke(cli, ["quiz", "--notes", str(tmp_path / "v")])
    assert result.exit_code == 1 and "## 📝 관련 문제" in result.output
