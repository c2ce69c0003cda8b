"""The real prepared model over the real starter vault: the right note comes first."""
from __future__ import annotations

import pytest

from tutor.retrieve import Retriever

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retriever(starter_home):
    import os

    from tests.conftest import REPO

    os.environ["TUTOR_HOME"] = str(starter_home)
    return Retriever(REPO / "notes")


@pytest.mark.parametrize(
    "question, note",
    [
        ("Glacier Deep Archive에서 데이터를 복원하는 데 걸리는 시간은?", "s3-glacier-retrieval-options.md"),
        ("Kinesis Data Streams 샤드 하나의 쓰기 처리량은 얼마인가?", "kinesis-data-streams-shards.md"),
        ("Which AWS service gives fine-grained column-level permissions on a data lake?",
         "lake-formation-data-lake-governance.md"),
        ("How do I reduce the cost of Athena queries that scan too much data?", "athena-serverless-query.md"),
    ],
)
@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_right_note_ranks_first(retriever, question, note, mode):
    hits = retriever.search(question, k=3, mode=mode)
    assert hits[0].note == note, [h.note for h in hits]
    assert hits[0].dense is not None and 0 < hits[0].dense <= 1


@pytest.mark.parametrize("question, note", [
    ("글루 잡 북마크가 뭐야?", "glue-etl-data-catalog.md"),  # "Glue job bookmark" spelt in Hangul
    ("레드시프트 스펙트럼이 뭐야?", "redshift-data-warehouse.md"),
])
def test_names_spelt_in_hangul_find_the_note_that_writes_them_in_english(retriever, question, note):
    assert [h.note for h in retriever.search(question, k=3)][0] == note


def test_a_question_about_fees_finds_the_section_on_billing(retriever):
    """The question says 요금, the note's heading says 과금 모델."""
    hit = retriever.search("아테나 요금은 어떻게 계산돼?", k=3)[0]
    assert (hit.note, hit.headings[-1]) == ("athena-serverless-query.md", "과금 모델")


def test_tag_filter_keeps_only_tagged_notes(retriever):
    hits = retriever.search("데이터 처리", k=5, tags=("service/emr",))
    with retriever.store.connect() as con:
        tagged = {p for (p,) in con.execute("SELECT path FROM note_tags WHERE tag = 'service/emr'")}
    assert hits and {h.note for h in hits} <= tagged and len(tagged) < 32
