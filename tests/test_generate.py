"""Generated distractors and questions with a queued fake chat model and the fake embedder:
every check rejects what it should, retries ask only for what is missing, letters follow their
options through the shuffle, and stored items go stale when a cited section changes."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from pydantic import Field

from index.embedder import get_embedder
from index.home import index_dir
from index.store import Store
from index.sync import sync
from tests.conftest import write_note
from tutor.practice import prompts
from tutor.practice.checks import Candidate, Checker, IndexTerms, Target, names
from tutor.practice.generate import _UNQUOTED, EXTRA, Generator, Progress
from tutor.practice.generated import Citation, GeneratedStore, stale

EMR_QUESTION = """**Question:** A company must run nightly Apache Spark batch jobs over terabytes of data stored in Amazon S3. Which service should process the data?

**Options:**

- A) Amazon Kinesis Data Streams
- B) Amazon EMR
- C) Amazon QuickSight

**정답: B) Amazon EMR**

💡 추가 설명:

- **Amazon Kinesis Data Streams** - 실시간 스트리밍 수집 서비스로 배치 처리와 무관
- **Amazon QuickSight** - BI 대시보드 서비스"""

GLUE_QUESTION = """**Question:** Which actions keep the AWS Glue Data Catalog current and avoid reprocessing old files? (Select 2)

**Options:**

- A) Run an AWS Glue crawler on a schedule
- B) Enable AWS Glue job bookmarks on the ETL job
- C) Write an AWS Lambda function that renames the files

**정답: A, B**"""

EMR_TEXT = ("Amazon EMR은 Apache Spark와 Hadoop 클러스터로 S3 데이터의 대규모 배치 처리를 실행하는 관리형 "
            "빅데이터 서비스다. 작업이 끝나면 클러스터를 종료하는 transient 클러스터와 Spot 인스턴스로 비용을 줄인다. "
            "EMR은 노드 유형으로 primary, core, task 노드를 쓴다.")


class QueuedChat(FakeListChatModel):
    """Replies in order, records every conversation, and fails if called once too often."""

    seen: list = Field(default_factory=list)
    streamed: str = ""

    def _record(self, messages):
        if len(self.seen) >= len(self.responses):
            raise AssertionError(f"called {len(self.seen) + 1} times, {len(self.responses)} replies queued")
        self.seen.append(list(messages))

    def _call(self, messages, stop=None, run_manager=None, **kwargs):
        self._record(messages)
        return super()._call(messages, stop, run_manager, **kwargs)

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        self._record(messages)
        for chunk in super()._stream(messages, stop, run_manager, **kwargs):
            self.streamed += chunk.message.content  # what the model got to write before it was stopped
            yield chunk


def reply(*texts, source=1) -> str:
    return json.dumps({"distractors": [{"text": t, "reason": f"{t}는 이 문제와 맞지 않는다", "source": source} for t in texts]},
                      ensure_ascii=False)


@pytest.fixture
def vault(tmp_path, fake_embedder):
    root = tmp_path / "vault"
    write_note(root, "emr.md", "emr", {"Amazon EMR": EMR_TEXT, "📝 관련 문제": EMR_QUESTION},
               tags=("service/emr", "service/s3"))
    write_note(root, "glue.md", "glue", {
        "AWS Glue": "AWS Glue는 서버리스 ETL 서비스로 Data Catalog, crawler, job bookmarks를 제공한다. 배치 ETL에 쓴다.",
        "📝 관련 문제": GLUE_QUESTION,
    }, tags=("service/glue",))
    write_note(root, "athena.md", "athena", {"Amazon Athena": "Amazon Athena는 S3 데이터를 SQL로 조회하는 서버리스 쿼리 서비스다."},
               tags=("service/athena", "service/s3"))
    write_note(root, "redshift.md", "redshift", {"Amazon Redshift": "Amazon Redshift는 페타바이트 규모 데이터 웨어하우스다."},
               tags=("service/redshift",))
    sync(root, Store(index_dir(root)), get_embedder())
    return root


def generator(vault, *replies, seed=0) -> Generator:
    return Generator(vault, QueuedChat(responses=list(replies)), seed=seed)


def last_prompt(gen: Generator) -> str:
    return gen.model.seen[-1][-1].content


def asked(gen: Generator) -> list[str]:
    """The last line of each request: what the model was asked to write."""
    return [conversation[-1].content.rsplit("\n", 1)[-1] for conversation in gen.model.seen]


BAD = [
    ("Amazon EMR", "correct"),  # the answer itself
    ("amazon  EMR.", "correct"),  # the answer, differently typed
    ("EMR", "correct"),  # the answer's name without 'Amazon'
    ("Amazon Kinesis Data Streams", "existing"),  # already an option
    ("Amazon QuantumStore", "unknown"),  # a service no note knows
    ("AWS Glue, which runs serverless ETL jobs on a fully managed Apache Spark environment", "giveaway"),  # too long
    ("Always Amazon Athena", "giveaway"),  # an absolute word the answer does not have
]


@pytest.mark.parametrize("bad, kind", BAD)
def test_each_check_rejects_and_the_retry_asks_only_for_the_missing(vault, bad, kind):
    gen = generator(vault, reply(bad, "AWS Glue", "Amazon Athena"), reply("Amazon Redshift"))
    result = gen.distractors(gen.find_question("emr#1"))

    assert [(r.text, r.kind) for r in result.rejected] == [(bad, kind)]
    new = {text for letter, text in result.question.options.items() if letter not in result.question.answer}
    assert new == {"AWS Glue", "Amazon Athena", "Amazon Redshift"}
    assert (result.missing, result.calls, result.first_try) == (0, 2, False)
    assert asked(gen)[0] == f"Write {3 + EXTRA} new distractors."  # over-asked: some always fail
    assert asked(gen)[1].startswith(f"Write {1 + EXTRA} more distractors")
    retry = last_prompt(gen)
    if kind == "correct":  # told without quoting the copy: the request already shows the answer
        assert _UNQUOTED["correct"] in retry and repr(bad) not in retry
    else:
        assert f"- {bad!r}: {result.rejected[0].reason}" in retry
    assert 'Already accepted (do not repeat): "AWS Glue"; "Amazon Athena"' in retry
    assert retry.startswith(gen.model.seen[0][-1].content.rsplit("\n", 1)[0])  # same request: a cached prefix


def test_a_distractor_may_echo_the_stem(vault):
    """Stem words in a wrong option stop the echo from pointing at the key: not a give-away."""
    gen = generator(vault, reply("AWS Glue Spark batch jobs", "Amazon Athena", "Amazon Redshift"))
    result = gen.distractors(gen.find_question("emr#1"))
    assert "AWS Glue Spark batch jobs" in result.question.options.values() and not result.rejected


def test_first_try(vault):
    gen = generator(vault, reply("AWS Glue", "Amazon Athena", "Amazon Redshift"))
    result = gen.distractors(gen.find_question("emr#1"))
    assert (result.first_try, result.calls, result.rejected, result.missing) == (True, 1, [], 0)


def test_duplicates_are_rejected(vault):
    gen = generator(vault, reply("AWS Glue", "AWS Glue", "Amazon Athena"), reply("Amazon Athena", "Amazon Redshift"))
    result = gen.distractors(gen.find_question("emr#1"))
    assert [(r.text, r.kind) for r in result.rejected] == [("AWS Glue", "duplicate")]
    assert result.missing == 0 and result.calls == 2  # a repeat ends the answer: the model is looping


def test_one_over_asked_call_fills_the_variant_and_hides_the_other_wrong_options(vault):
    gen = generator(vault, reply("Amazon EMR", "Amazon Kinesis Data Streams", "AWS Glue", "Amazon Athena",
                                 "Amazon Redshift"))
    result = gen.distractors(gen.find_question("emr#1"))
    assert (result.missing, result.calls, result.first_try) == (0, 1, True)
    assert [r.kind for r in result.rejected] == ["correct", "existing"]
    request = last_prompt(gen)
    assert "Amazon QuickSight" not in request  # a human distractor, shown it would be copied
    assert "\n- Amazon EMR\n" in request  # the correct option is named, to be avoided


def test_candidates_beyond_the_missing_count_are_not_used(vault):
    gen = generator(vault, reply("AWS Glue", "Amazon Athena", "Amazon Redshift", "AWS Lambda"))
    result = gen.distractors(gen.find_question("emr#1"))
    new = [t for letter, t in result.question.options.items() if letter not in result.question.answer]
    assert sorted(new) == ["AWS Glue", "Amazon Athena", "Amazon Redshift"] and result.calls == 1


def test_invalid_json_and_unknown_sources_are_retried(vault):
    gen = generator(vault, "Sure! Here are three distractors: Glue, Athena, Redshift",
                    reply("AWS Glue", "Amazon Athena", "Amazon Redshift", source=99),
                    reply("AWS Glue", "Amazon Athena", "Amazon Redshift"))
    result = gen.distractors(gen.find_question("emr#1"))
    assert [r.kind for r in result.rejected] == ["invalid", "invalid"]
    assert "source" in result.rejected[1].reason  # the schema only admits the sources shown
    assert "not valid JSON" in last_prompt(gen)
    retry = f"Write {3 + EXTRA} more distractors that avoid these problems and differ from every option above."
    assert asked(gen)[1:] == [retry, retry]
    assert (result.missing, result.calls) == (0, 3)


def test_retries_are_bounded_and_nothing_is_padded(vault):
    gen = generator(vault, reply("Amazon EMR", "AWS Glue", "EMR"), reply("Amazon EMR", "Amazon EMR"),
                    reply("Amazon QuantumStore", "EMR"))
    result = gen.distractors(gen.find_question("emr#1"))
    assert result.calls == 3 and result.missing == 2
    assert sorted(result.question.options.values()) == ["AWS Glue", "Amazon EMR"]
    assert [r.kind for r in result.rejected] == ["correct", "correct", "correct", "correct", "unknown", "correct"]
    retry = f"Write {2 + EXTRA} more distractors that avoid these problems and differ from every option above."
    assert asked(gen)[1:] == [retry, retry]


def test_progress_tells_each_call_and_candidate_as_it_is_checked(vault):
    gen = generator(vault, reply("Amazon EMR", "AWS Glue", "Amazon Athena"), reply("Amazon Redshift"))
    events, written = [], []

    def progress(event):
        events.append(event)
        written.append(gen.model.streamed)  # what the model had written when it was told

    result = gen.distractors(gen.find_question("emr#1"), progress=progress)
    [bad] = result.rejected
    assert bad.text == "Amazon EMR" and bad.reason.startswith("restates the correct option 'Amazon EMR'")
    assert events == [
        Progress("call", call=1, most=3),
        Progress("rejected", "Amazon EMR", bad.reason, call=1, why="correct", of="Amazon EMR"),
        Progress("accepted", "AWS Glue", call=1),
        Progress("accepted", "Amazon Athena", call=1),
        Progress("call", call=2, most=3),
        Progress("accepted", "Amazon Redshift", call=2),
        Progress("end", call=2),
    ]
    assert "Amazon EMR" in written[1] and "AWS Glue" not in written[1]  # told while the model still writes


def test_letters_and_explanations_follow_their_options_through_the_shuffle(vault):
    good = reply("Amazon Athena", "Amazon Redshift", "Amazon QuickSight")
    gen = generator(vault, *[good] * 12, seed=3)
    record = gen.find_question("glue#1")
    correct = {record.question.options[a] for a in record.question.answer}
    answers = set()
    for _ in range(12):
        q = gen.distractors(record).question
        assert {q.options[a] for a in q.answer} == correct
        assert list(q.options) == list("ABCDE")
        for letter, text in q.options.items():
            if letter in q.answer:
                assert "노트의 정답" in q.explanations[letter]
            else:
                assert q.explanations[letter].startswith(f"{text}는 이 문제와 맞지 않는다 (근거: ")
        answers.add(q.answer)
    assert len(answers) > 3  # the correct options really move around


def test_sources_exclude_the_question_itself_and_are_cited(vault):
    gen = generator(vault, reply("AWS Glue", "Amazon Athena", "Amazon Redshift"))
    result = gen.distractors(gen.find_question("emr#1"))
    sources = gen.model.seen[0][1].content.split("Question:")[0]
    assert "[1] " in sources and "📝 관련 문제" not in sources  # no question blocks, this one least of all
    assert result.citations[0] == Citation("emr.md", ("emr 노트", "📝 관련 문제"))
    cited = {c.note for c in result.citations[1:]}
    assert cited and cited <= {"emr.md", "glue.md", "athena.md", "redshift.md"}


def question_reply(stem, options) -> str:
    return json.dumps({"stem": stem, "options": [
        {"text": t, "correct": c, "explanation": f"{t} 설명", "source": 1 if c else 2} for t, c in options]},
        ensure_ascii=False)


def test_new_question_checks_its_options_and_fills_what_failed(vault):
    written = question_reply(
        "A team runs nightly Spark jobs over data in S3 and wants to cut cost. Which service fits?",
        [("Amazon EMR with transient clusters and Spot instances", True), ("AWS Glue", False),
         ("Amazon Athena", False), ("Amazon QuantumStore", False)])
    gen = generator(vault, written, reply("Amazon Redshift", source=2))
    result = gen.question("emr", "Amazon EMR")
    q = result.question
    assert [q.options[a] for a in q.answer] == ["Amazon EMR with transient clusters and Spot instances"]
    assert set(q.options.values()) - {q.options[q.answer[0]]} == {"AWS Glue", "Amazon Athena", "Amazon Redshift"}
    assert [r.kind for r in result.rejected] == ["unknown"]
    assert asked(gen)[1].startswith(f"Write {1 + EXTRA} more distractors") and "'Amazon QuantumStore'" in last_prompt(gen)
    assert "Question: A team runs nightly Spark jobs" in last_prompt(gen)
    assert result.citations[0] == Citation("emr.md", ("emr 노트", "Amazon EMR"))
    assert "(근거: emr.md › emr 노트 > Amazon EMR)" in q.explanations[q.answer[0]]
    assert result.source_question is None and result.missing == 0


@pytest.mark.parametrize("stem, correct, problem", [
    ("Which service stores petabytes for BI?", "Amazon Redshift", "does not say so"),
    ("Why is Amazon EMR with Spot instances cheap?", "Amazon EMR with Spot instances", "stem contains the answer"),
])
def test_new_question_with_a_bad_answer_is_rewritten(vault, stem, correct, problem):
    bad = question_reply(stem, [(correct, True), ("AWS Glue", False), ("Amazon Athena", False)])
    good = question_reply("Which service runs nightly Spark batch jobs on clusters?",
                          [("Amazon EMR", True), ("AWS Glue", False), ("Amazon Athena", False), ("Amazon Redshift", False)])
    gen = generator(vault, bad, good)
    result = gen.question("emr.md", "Amazon EMR")
    assert problem in result.rejected[0].reason and result.rejected[0].kind == "question"
    assert problem in last_prompt(gen)
    assert result.question.options[result.question.answer[0]] == "Amazon EMR"


def test_progress_of_a_new_question_tells_the_rewrite_and_its_options(vault):
    stem = "Why is Amazon EMR with Spot instances cheap?"
    bad = question_reply(stem, [("Amazon EMR with Spot instances", True), ("AWS Glue", False), ("Amazon Athena", False)])
    good = question_reply("Which service runs nightly Spark batch jobs on clusters?",
                          [("Amazon EMR", True), ("AWS Glue", False), ("Amazon QuantumStore", False),
                           ("Amazon Athena", False)])
    gen = generator(vault, bad, good, reply("Amazon Redshift", source=2))
    events = []
    result = gen.question("emr.md", "Amazon EMR", n=3, progress=events.append)
    problem, unknown = (r.reason for r in result.rejected)
    assert [(e.kind, e.text, e.call, e.most) for e in events] == [
        ("call", "", 1, 5),  # up to three tries at the question, then two at its wrong options
        ("rejected", stem, 1, 0),
        ("call", "", 2, 5),
        ("accepted", "AWS Glue", 2, 0),
        ("accepted", "Amazon Athena", 2, 0),
        ("rejected", "Amazon QuantumStore", 2, 0),
        ("call", "", 3, 4),  # the question took two calls: two are left for options
        ("accepted", "Amazon Redshift", 3, 0),
        ("end", "", 3, 0),
    ]
    assert [e.reason for e in events if e.kind == "rejected"] == [problem, unknown]
    assert "stem contains the answer" in problem


def test_new_question_from_a_random_prose_section_skips_the_questions(vault):
    good = question_reply("Which service runs nightly Spark batch jobs on clusters?",
                          [("Amazon EMR", True), ("AWS Glue", False), ("Amazon Athena", False), ("Amazon Redshift", False)])
    gen = generator(vault, good)
    assert gen.question("emr").citations[0].headings == ("emr 노트", "Amazon EMR")


def test_names_and_known_terms(vault):
    assert names("Use Amazon Kinesis Data Streams with SSE-KMS") == [("amazon", "kinesis", "data", "streams"), ("sse", "kms")]
    assert names("Partition the data by date") == []
    terms = IndexTerms(Store(index_dir(vault)))
    assert terms.knows(("amazon", "emr")) and terms.knows(("aws", "glue", "data", "catalog"))
    assert not terms.knows(("amazon", "quantumstore"))
    assert terms.is_service(("amazon", "emr", "cluster")) and not terms.is_service(("apache", "spark"))


def test_paraphrase_by_embedding_but_not_when_names_differ(vault):
    checker = Checker(IndexTerms(Store(index_dir(vault))), get_embedder())
    answer = "Run the nightly Spark batch jobs on an Amazon EMR cluster"
    assert checker.same_meaning("Run the nightly Spark batch jobs on Amazon EMR clusters", answer).startswith("cosine")
    assert checker.same_meaning("Amazon EC2 T3 instances", "Amazon EC2 Inf2 instances") is None
    target = Target("Which service?", (answer,), ())
    kept, rejected = checker.review([Candidate("Run the nightly Spark batch jobs on Amazon EMR clusters", "", 1)], target)
    assert not kept and rejected[0].kind == "correct"


KMS_ANSWER = "Configure default encryption with SSE-KMS by using a customer managed key that has automatic rotation enabled"


@pytest.mark.parametrize("candidate", [
    KMS_ANSWER.replace("enabled", "disabled"),  # the opposite setting
    KMS_ANSWER.replace("customer managed", "AWS managed"),  # the other kind of key
    "Use a 1-minute tumbling window with a watermark of 30 seconds".replace("30", "5"),
    KMS_ANSWER.replace("by using", "without"),
])
def test_an_opposite_word_or_another_number_is_a_new_option_however_close(vault, candidate):
    checker = Checker(IndexTerms(Store(index_dir(vault))), get_embedder())
    answer = KMS_ANSWER if candidate.startswith("Configure") else "Use a 1-minute tumbling window with a watermark of 30 seconds"
    assert checker.cosine(candidate, answer) >= checker.paraphrase_cosine  # only the wording rule tells them apart
    assert checker.same_meaning(candidate, answer) is None
    reworded = answer.replace(" a ", " the ", 1)  # no opposite, no number: still the answer
    assert reworded != answer and checker.same_meaning(reworded, answer)


def test_a_whole_clause_more_is_not_the_same_option(vault):
    checker = Checker(IndexTerms(Store(index_dir(vault))), get_embedder())
    existing = "Configure default encryption with SSE-S3"
    assert checker.same_meaning(existing + " storage setting", existing) == "all of it, and only plain words more"
    longer = existing + " by using a customer managed key that has automatic rotation enabled"
    assert not (checker.same_meaning(longer, existing) or "").startswith("all of it")


def test_the_model_stops_writing_once_enough_candidates_pass(vault):
    gen = generator(vault, reply("AWS Glue", "Amazon Athena", "Amazon Redshift", "AWS Lambda", "Amazon SQS"))
    result = gen.distractors(gen.find_question("emr#1"))
    assert (result.missing, result.calls, result.first_try) == (0, 1, True)
    assert "Amazon Redshift" in gen.model.streamed and "AWS Lambda" not in gen.model.streamed


def test_a_model_that_copies_the_answer_twice_is_stopped_and_asked_again(vault):
    gen = generator(vault, reply("AWS Glue", "Amazon EMR", "EMR", "Amazon EMR", "Amazon Athena"),
                    reply("Amazon Athena", "Amazon Redshift"))
    result = gen.distractors(gen.find_question("emr#1"))
    assert [(r.text, r.kind, r.of) for r in result.rejected] == [("Amazon EMR", "correct", "Amazon EMR"),
                                                                 ("EMR", "correct", "Amazon EMR")]
    assert gen.model.streamed.count('"text": "Amazon Athena"') == 1  # written in the second answer only
    assert (result.missing, result.calls) == (0, 2)
    assert asked(gen)[1].startswith(f"Write {2 + EXTRA} more distractors")


def test_an_answer_cut_off_mid_item_keeps_the_items_it_finished(vault):
    cut = reply("AWS Glue", "Amazon Athena", "Amazon Redshift")[:-60]
    gen = generator(vault, cut, reply("Amazon Redshift"))
    result = gen.distractors(gen.find_question("emr#1"))
    assert (result.missing, result.calls) == (0, 2)
    assert asked(gen)[1].startswith(f"Write {1 + EXTRA} more distractors")


def test_a_name_only_the_worked_example_shows_is_a_copy(vault):
    from tutor.practice.generate import _borrowed

    copied = "Add an Amazon ElastiCache for Redis cluster in front of the queue"
    checker = Checker(IndexTerms(Store(index_dir(vault))), get_embedder())
    target = Target("Which service decouples the order system?", ("Amazon SQS",), (),
                    borrowed=_borrowed("Sources: [1] SQS queues ... Question: Which service decouples ..."))
    kept, rejected = checker.review([Candidate(copied, "", 1), Candidate("Amazon Kinesis Data Streams", "", 1)], target)
    assert [c.text for c in kept] == ["Amazon Kinesis Data Streams"] and rejected[0].kind == "example"
    # where the sources do describe ElastiCache, naming it is grounded, not copied
    assert ("elasticache", "redis") not in _borrowed("[2] ElastiCache for Redis is an in-memory cache")


def test_prompts_refuse_missing_values():
    with pytest.raises(prompts.PromptError, match=r"\$count"):
        prompts.render(prompts.RETRY, accepted="(none)", rejected="- x")
    assert "Write 2 more" in prompts.render(prompts.RETRY, accepted="(none)", rejected="- x", count=2)


# -- stored items -----------------------------------------------------------------------------

def saved_variant(vault):
    gen = generator(vault, reply("AWS Glue", "Amazon Athena", "Amazon Redshift"))
    result = gen.distractors(gen.find_question("emr#1"))
    store = GeneratedStore()
    store.save(vault, result.question, result.citations, result.source_question, result.origin)
    return store, result


def reindex(vault):
    sync(vault, Store(index_dir(vault)), get_embedder())


def test_records_for_the_quiz(vault):
    store, result = saved_variant(vault)
    [record] = store.records(vault)
    assert record.id == result.id and record.id.startswith("gen-")
    assert record.question == result.question and record.note == "emr.md"
    cited = {c.note for c in result.citations}
    assert "service/emr" in record.tags and ("service/athena" in record.tags) == ("athena.md" in cited)
    assert store.records(vault, tags=("service/emr",)) == [record]
    assert store.records(vault, tags=("service/dynamodb",)) == []
    assert store.drop(record.id) and store.records(vault) == []


def test_editing_another_section_keeps_the_item_fresh(vault):
    store, result = saved_variant(vault)
    cited = {c.note for c in result.citations}
    uncited = next(name for name in ("athena", "redshift") if f"{name}.md" not in cited)
    write_note(vault, f"{uncited}.md", uncited, {"Edited": "Amazon DynamoDB는 NoSQL 데이터베이스다."})
    reindex(vault)
    assert stale(vault, Store(index_dir(vault))) == []
    assert [r.id for r in store.records(vault)] == [result.id]


def test_editing_a_cited_section_makes_the_item_stale(vault):
    store, result = saved_variant(vault)
    write_note(vault, "emr.md", "emr", {"Amazon EMR": EMR_TEXT, "📝 관련 문제": EMR_QUESTION.replace("nightly", "hourly")},
               tags=("service/emr", "service/s3"))
    reindex(vault)
    [item] = stale(vault, Store(index_dir(vault)))
    assert item.id == result.id
    assert item.problems == ("emr.md › emr 노트 > 📝 관련 문제 changed",)
    assert store.records(vault) == []  # stale items are never practised


def test_a_removed_note_makes_its_items_stale(vault):
    store, result = saved_variant(vault)
    (vault / "emr.md").unlink()
    reindex(vault)
    [item] = store.stale(vault)
    assert "emr.md › emr 노트 > 📝 관련 문제 was removed" in item.problems


def test_cli_distractors_json_and_stale_drop(vault, monkeypatch):
    from tutor import llm
    from tutor.cli import cli

    fake = QueuedChat(responses=[reply("AWS Glue", "Amazon Athena", "Amazon Redshift")])
    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: fake)
    run = CliRunner().invoke(cli, ["generate", "distractors", "--question", "emr#1", "--json", "--notes", str(vault)])
    assert run.exit_code == 0, run.output
    data = json.loads(run.output)
    assert set(data) == {"id", "stem", "options", "answer", "explanations", "citations", "source_question",
                         "rejected", "missing", "saved"}
    assert data["source_question"] == "emr#1" and data["missing"] == 0 and data["rejected"] == []
    assert [data["options"][a] for a in data["answer"]] == ["Amazon EMR"]
    assert all(set(c) == {"note", "heading"} for c in data["citations"])
    assert [r.id for r in GeneratedStore().records(vault)] == [data["id"]]

    write_note(vault, "emr.md", "emr", {"Amazon EMR": EMR_TEXT, "📝 관련 문제": EMR_QUESTION + "\n- 추가"},
               tags=("service/emr", "service/s3"))
    reindex(vault)
    run = CliRunner().invoke(cli, ["generate", "stale", "--drop", "--json", "--notes", str(vault)])
    assert run.exit_code == 0, run.output
    [entry] = json.loads(run.output)
    assert entry["id"] == data["id"] and entry["dropped"] is True
    assert entry["problems"] == ["emr.md › emr 노트 > 📝 관련 문제 changed"]
    assert GeneratedStore().items(vault) == []


def test_cli_progress_goes_to_stderr_and_never_into_json(vault, monkeypatch):
    from tutor import llm
    from tutor.cli import cli

    replies = [reply("Amazon EMR", "AWS Glue", "Amazon Athena"), reply("Amazon Redshift")]
    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: QueuedChat(responses=list(replies)))
    args = ["generate", "distractors", "--question", "emr#1", "--no-save", "--notes", str(vault)]

    run = CliRunner().invoke(cli, args)
    assert run.exit_code == 0, run.output
    lines = run.stderr.splitlines()
    progress = lines[lines.index("  call 1/3 …"):lines.index("  call 2/3 …") + 2]
    assert progress[1].startswith("  ✗ Amazon EMR — restates the correct option 'Amazon EMR'")
    assert progress[2:] == ["  ✓ AWS Glue", "  ✓ Amazon Athena", "  call 2/3 …", "  ✓ Amazon Redshift"]
    assert "call 1/3" not in run.stdout and "✓" not in run.stdout and "정답: " in run.stdout

    run = CliRunner().invoke(cli, [*args, "--json"])
    assert run.exit_code == 0, run.output
    assert run.stderr == ""
    assert [r["text"] for r in json.loads(run.stdout)["rejected"]] == ["Amazon EMR"]


def test_cli_unknown_question_says_what_to_do(vault, monkeypatch):
    from tutor import llm
    from tutor.cli import cli

    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: QueuedChat(responses=["{}"]))
    run = CliRunner().invoke(cli, ["generate", "distractors", "--question", "emr#2", "--notes", str(vault)])
    assert run.exit_code == 1
    assert "No question 'emr#2'" in run.output and "emr#1" in run.output


def test_evaluate_generation_reports_the_checks(vault, monkeypatch):
    from tutor import llm
    from tutor.generate_eval import evaluate_generation

    fake = QueuedChat(responses=[reply("EMR", "AWS Glue", "Amazon Athena"), reply("Amazon Redshift"),
                                 reply("Amazon Athena", "Amazon Redshift", "Amazon QuantumStore"),
                                 reply("Amazon QuantumStore"), reply("Amazon QuantumStore")])
    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: fake)
    report = evaluate_generation(vault)
    assert report["questions"] == 2 and report["distractors_requested"] == 6
    assert report["valid_after_retries"] == 0.5 and report["valid_first_try"] == 0.0
    assert report["rejected_by_check"] == {"correct": 1, "unknown": 3}
    assert report["equal_to_correct"] == 0 and report["distractors_generated"] == 5
    assert report["incomplete"][0]["question"] == "glue#1" and report["incomplete"][0]["missing"] == 1
    assert report["human_options_flagged"]["checked"] == 3


def test_a_long_name_explained_by_a_known_acronym_is_known(vault):
    checker = Checker(IndexTerms(Store(index_dir(vault))), get_embedder())
    assert checker.unknown("Amazon Elastic MapReduce (EMR)") is None
    assert checker.unknown("Amazon Elastic MapReduce")[1] == "unknown"
    assert checker.unknown("Amazon Quantum Store (AQS)")[1] == "unknown"  # the acronym itself is unknown


def test_cli_stale_regenerate_replaces_the_item(vault, monkeypatch):
    from tutor import llm
    from tutor.cli import cli

    store, old = saved_variant(vault)
    write_note(vault, "emr.md", "emr", {"Amazon EMR": EMR_TEXT, "📝 관련 문제": EMR_QUESTION.replace("nightly", "hourly")},
               tags=("service/emr", "service/s3"))
    reindex(vault)
    listed = CliRunner().invoke(cli, ["generate", "stale", "--notes", str(vault)])
    assert old.id in listed.output and "--regenerate" in listed.output
    fake = QueuedChat(responses=[reply("AWS Glue", "Amazon Athena", "Amazon Redshift")])
    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: fake)
    run = CliRunner().invoke(cli, ["generate", "stale", "--regenerate", "--json", "--notes", str(vault)])
    assert run.exit_code == 0, run.output
    [entry] = json.loads(run.output)
    [item] = store.items(vault)
    assert entry["id"] == old.id and entry["new_id"] == item.id != old.id
    assert "hourly" in item.question.stem and item.source_question == "emr#1"
    assert store.stale(vault) == []


def test_cli_eval_generation_prints_the_table_and_json(vault, monkeypatch):
    from tutor import llm
    from tutor.cli import cli

    answers = [reply("AWS Glue", "Amazon Athena", "Amazon Redshift")]
    monkeypatch.setattr(llm, "get_chat_model", lambda spec=None, **opts: QueuedChat(responses=list(answers)))
    run = CliRunner().invoke(cli, ["eval", "--generation", "--limit", "1", "--notes", str(vault)])
    assert run.exit_code == 0, run.output
    assert "one variant of 1 of 2 vault questions" in run.output
    assert "valid_after_retries" in run.output and "human-written distractors" in run.output
    run = CliRunner().invoke(cli, ["eval", "--generation", "--limit", "1", "--json", "--notes", str(vault)])
    report = json.loads(run.output)
    assert report["questions"] == 1 and report["valid_after_retries"] == 1.0 and report["equal_to_correct"] == 0
    refused = CliRunner().invoke(cli, ["eval", "--generation", "--no-llm", "--notes", str(vault)])
    assert refused.exit_code == 2 and "drop --no-llm" in refused.output
