"""Hybrid retrieval with the fake embedder: fusion, exact names, exclusion, relevance scores."""
from __future__ import annotations

import pytest

from index.embedder import get_embedder
from index.home import index_dir
from index.lexical import match_query, terms, tokens
from index.store import Store
from index.sync import sync
from tests.conftest import write_note
from tutor.retrieve import Retriever, RetrievalError, fuse


@pytest.fixture
def retriever(tmp_path, fake_embedder):
    vault = tmp_path / "vault"
    write_note(vault, "kinesis.md", "kinesis", {
        "샤드": "Kinesis Data Streams의 샤드 하나는 초당 1MB 쓰기를 받는다.",
        "📝 관련 문제": "**Question:** How much can one shard ingest?",
    }, tags=("service/kinesis",))
    write_note(vault, "glue.md", "glue", {"ETL": "AWS Glue 크롤러가 Data Catalog 테이블을 만든다."}, tags=("service/glue",))
    write_note(vault, "emr.md", "emr", {"Spark": "EMR 클러스터에서 Spark 배치 작업을 실행한다."}, tags=("service/emr",))
    sync(vault, Store(index_dir(vault)), get_embedder())
    return Retriever(vault)


def test_korean_tokens_are_bigrams_and_english_words_whole():
    assert tokens("샤드를 늘린다 Kinesis S3") == ["샤드", "드를", "늘린", "린다", "kinesis", "s3"]
    assert match_query("그럼 Glue는?") == '"그럼" OR "glue" OR "는"'
    assert match_query("?!") is None


def test_queries_drop_english_function_words_and_exam_boilerplate():
    assert match_query("A company wants a solution for Kinesis 샤드 that meets the requirements") == (
        '"kinesi" OR "샤드"'  # the stem, as indexed
    )
    assert match_query("What is the?") == '"what" OR "is" OR "the"'  # only stopwords: keep them
    assert terms("Which solution") == ["which", "solut"]  # indexed text keeps every word


def test_queries_drop_korean_question_phrasing():
    assert match_query("샤드 수는 어떻게 정하나요?") == '"샤드" OR "수는" OR "정하"'
    assert match_query("무슨 일을 해?") == '"해"'  # "무슨", "일을" gone; a word is left to match


def test_a_korean_word_for_cost_finds_the_notes_other_words_for_it():
    assert match_query("아테나 요금은?") == '"아테" OR "테나" OR "요금" OR "과금" OR "비용" OR "가격" OR "금은"'
    assert match_query("과금 방식") == '"요금" OR "과금" OR "비용" OR "가격" OR "방식"'


def test_english_words_are_stemmed_so_conjugations_match():
    assert terms("fails failed failing") == ["fail"] * 3
    assert terms("storing stored stores") == ["store"] * 3
    assert terms("S3 EC2 샤드를") == ["s3", "ec2", "샤드", "드를"]  # names with digits and Korean stay whole
    assert tokens("failed") == ["failed"]  # names are compared as written
    assert match_query("jobs that failed") == match_query("a job fails")


def test_fusion_prefers_what_both_rankers_like():
    fused = fuse([[(1, 0.9), (2, 0.8), (3, 0.7)], [(4, 9.0), (2, 5.0)]])
    assert [i for i, _ in fused] == [2, 1, 4, 3]  # second in both beats first in one


def test_fusion_trusts_each_ranker_as_told():
    dense, lexical = [(1, 0.9), (2, 0.8)], [(3, 9.0), (2, 5.0)]
    assert [i for i, _ in fuse([dense, lexical])][1:] == [1, 3]  # a tie broken by order
    assert [i for i, _ in fuse([dense, lexical], trust=(0.4, 1.0))] == [2, 3, 1]


def test_lexical_ranker_finds_exact_service_name(retriever):
    hits = retriever.search("Glue", k=1, mode="lexical")
    assert hits[0].note == "glue.md"
    assert hits[0].dense is not None  # relevance is judged by cosine whatever the ranker


def test_hybrid_and_tag_filter(retriever):
    assert retriever.search("Spark 배치", k=1)[0].note == "emr.md"
    assert {h.note for h in retriever.search("Spark 배치", k=3, tags=("service/glue",))} == {"glue.md"}


def test_exclude_drops_a_section_and_its_children(retriever):
    question = "How much can one shard ingest?"
    assert retriever.search(question, k=1)[0].headings[-1] == "📝 관련 문제"
    hits = retriever.search(question, k=5, exclude=(("kinesis.md", ("kinesis 노트", "📝 관련 문제")),))
    assert all(h.headings[-1] != "📝 관련 문제" for h in hits)
    everything = retriever.search(question, k=5, exclude=(("kinesis.md", ("kinesis 노트",)),))
    assert all(h.note != "kinesis.md" for h in everything)


def test_unknown_mode_is_refused(retriever):
    with pytest.raises(ValueError):
        retriever.search("x", mode="fuzzy")


def test_no_index_message(tmp_path, fake_embedder):
    with pytest.raises(RetrievalError, match="run 'tutor index --notes"):
        Retriever(tmp_path)


QUESTION_BLOCK = """**Question:** A company needs to run nightly Spark batch jobs. Which service should it use?

**Options:**
- A) Amazon EMR
- B) Amazon Kinesis Data Streams

**정답: A) Amazon EMR**

💡 추가 설명:
- **Amazon Kinesis Data Streams** - 스트리밍 수집용이라 배치가 아님"""


@pytest.fixture
def exam_vault(tmp_path, fake_embedder):
    vault = tmp_path / "exam"
    write_note(vault, "kinesis.md", "kinesis", {
        "샤드": "Kinesis Data Streams 샤드는 초당 1MB 쓰기를 받는다.",
        "📝 관련 문제": QUESTION_BLOCK,
    }, tags=("service/kinesis",))
    write_note(vault, "emr.md", "emr", {
        "Spark batch jobs": "EMR 클러스터는 nightly Spark batch jobs 를 실행하는 서비스다.",
        "비용": "EMR Spark batch jobs 는 Spot 인스턴스로 비용을 줄인다.",
        "Serverless": "EMR Serverless 는 Spark batch jobs 를 클러스터 없이 실행한다.",
    }, tags=("service/emr",))
    sync(vault, Store(index_dir(vault)), get_embedder())
    return Retriever(vault)


def test_practice_blocks_rank_below_prose_they_echo(exam_vault):
    """An exam-style question matches other questions' wording; the prose that explains the
    service must come first, and the question block still ranks, marked as practice."""
    stem = "A company needs to run nightly Spark batch jobs. Which service should it use?"
    with exam_vault.store.snapshot() as snap:  # undemoted, the block is the dense ranker's best
        best = snap.dense(exam_vault.embedder.embed_query(stem), 1, None)[0][0]
        assert snap.rows([best])[best]["practice"]
    hits = exam_vault.search(stem, k=5)
    assert hits[0].note == "emr.md" and not hits[0].practice
    assert any(h.practice and h.note == "kinesis.md" for h in hits)


def test_one_note_holds_at_most_two_of_the_top_sections(exam_vault):
    hits = exam_vault.search("EMR Spark batch jobs", k=5)
    assert [h.note for h in hits].count("emr.md") == 2 and len(hits) == 4
