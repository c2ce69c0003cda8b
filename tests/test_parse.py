"""index.parse against the real seed note and hand-made tricky notes (fast, no models)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from index.note import NoteSkipped
from index.parse import MAX_NOTE_BYTES, decode, load_note, parse_note, parse_questions, scan_questions, to_plain_text

FIXTURES = Path(__file__).parent / "fixtures" / "notes"
SEEDS = Path(__file__).parents[2] / "shared" / "seeds"
SEED = SEEDS / "000_282ce37f247d4922.txt"


def fixture(name: str):
    return load_note(FIXTURES, FIXTURES / name)


def section(note, *headings):
    return next(s for s in note.sections if s.headings == headings)


# ---------------------------------------------------------------- the real seed note


@pytest.fixture(scope="module")
def seed():
    if not SEED.exists():
        pytest.skip(f"seed note not present: {SEED}")
    return load_note(SEEDS, SEED)


def test_seed_metadata(seed):
    assert seed.path == SEED.name
    assert seed.title == "aws-batch-ml-service-selection"
    assert seed.tags == (
        "service/s3",
        "service/emr",
        "constraint/batch-processing",
        "usecase/machine-learning",
        "problem/service-selection",
    )
    assert seed.aliases == ("aws-batch-ml", "batch-processing-aws", "ml-batch-services")
    assert (seed.created, seed.modified) == ("2025-08-20", "2025-08-20")
    assert seed.warnings == []


def test_seed_sections(seed):
    top = "AWS 배치 모드 머신러닝 데이터 처리 서비스 선택"
    s3 = section(seed, top, "📝 설명", "배치 모드 데이터 처리 아키텍처", "Amazon S3 (데이터 수집 및 저장)")
    assert s3.line == 28
    assert s3.text.splitlines()[0] == "- 대용량 데이터의 배치 수집과 저장을 위한 확장 가능한 객체 스토리지"
    intro = section(seed, top, "📝 설명", "배치 모드 데이터 처리 아키텍처")
    assert intro.text == "머신러닝을 위한 배치 처리는 일반적으로 데이터 저장소와 처리 엔진의 조합으로 구성됩니다."
    # headings with no text of their own (the h1, "📝 설명") make no empty sections
    assert all(s.text for s in seed.sections)
    assert (top,) not in [s.headings for s in seed.sections]
    assert [s.line for s in seed.sections][:3] == [18, 24, 28]


def test_seed_diagram_kept_verbatim(seed):
    flow = section(seed, "AWS 배치 모드 머신러닝 데이터 처리 서비스 선택", "📝 설명", "아키텍처 플로우")
    assert flow.text.splitlines() == [
        "[외부 데이터 소스] → [Amazon S3] → [Amazon EMR] → [처리된 결과]",
        "        ↓               ↓             ↓              ↓",
        "   로그파일, DB        데이터 레이크    Spark 클러스터    ML 모델 학습",
        "   API 데이터         배치 저장소      분산 처리         피처 스토어",
    ]


def test_seed_question(seed):
    [q] = seed.questions
    assert q.stem.startswith("A company needs to process terabytes")
    assert q.stem.endswith("(Select 2)")
    assert q.options == {
        "A": "Amazon S3",
        "B": "AWS Glue",
        "C": "Amazon EMR",
        "D": "Amazon Kinesis Data Firehose",
        "E": "AWS Data Pipeline",
    }
    assert q.answer == ("A", "C")
    assert sorted(q.explanations) == ["B", "D", "E"]
    assert q.explanations["D"] == "실시간 스트리밍 전송 서비스로 배치 처리와 무관"
    assert q.explanations["E"] == "워크플로우 관리 도구로 대규모 배치 처리에는 부적합"
    assert q.explanation.splitlines()[0].startswith("- AWS Glue - ETL 서비스이지만")
    assert q.headings == ("AWS 배치 모드 머신러닝 데이터 처리 서비스 선택", "📝 관련 문제")
    assert q.number == 0


# ---------------------------------------------------------------- frontmatter and tags


def test_broken_yaml_is_dropped_and_located():
    note = fixture("broken_yaml.md")
    [warning] = note.warnings
    assert warning.startswith("broken YAML frontmatter (lines 3-4:")
    assert note.title == "VPC Endpoint 정리"  # from the h1: the YAML title is lost with the block
    assert note.tags == ("service/vpc-endpoint",)
    assert note.aliases == ()
    [only] = note.sections
    assert "tags:" not in only.text and only.line == 7


def test_no_frontmatter_and_body_tags():
    note = fixture("no_frontmatter.md")
    assert note.title == "Lambda 동시성"
    assert note.tags == ("draft", "service/lambda", "시험/SAA")  # #1, #2024, URL fragments, code, comments: not tags
    assert note.sections[0].headings == () and note.sections[0].line == 1
    assert note.sections[0].text == "시작 전 메모: 이 노트는 frontmatter가 없다. #draft"
    assert note.warnings == []


def test_tags_and_aliases_as_strings_and_title_from_file_name():
    note = fixture("tags_string.md")
    assert note.tags == ("service/s3", "exam/saa", "problem/cost")
    assert note.aliases == ("s3 비용", "s3-cost")
    assert note.created == "2024-03-01T09:30:00"
    assert note.modified == "2024-03-02"
    assert note.title == "tags_string"


def test_frontmatter_that_is_not_a_mapping():
    note = parse_note("---\n- a\n- b\n---\n# T\nbody\n", "list.md")
    assert note.warnings == ["frontmatter is a list, not 'key: value' lines; ignored"]
    assert note.title == "T" and note.sections[0].line == 5


def test_unclosed_frontmatter_is_read_as_text():
    note = parse_note("---\ntitle: x\n\n# T\nbody\n", "open.md")
    assert "never closed" in note.warnings[0]
    assert note.title == "T"
    assert [(s.headings, s.line, s.text) for s in note.sections] == [((), 1, "title: x"), (("T",), 4, "body")]


def test_crlf_line_numbers():
    note = parse_note("---\r\ntitle: crlf\r\n---\r\n\r\n# H\r\ntext\r\n## 2\r\nmore\r\n", "c.md")
    assert [(s.headings, s.line, s.text) for s in note.sections] == [(("H",), 5, "text"), (("H", "2"), 7, "more")]


# ---------------------------------------------------------------- sections and rendering


def test_heading_inside_code_fence_is_content():
    note = fixture("fence_heading.md")
    assert [(s.headings, s.line) for s in note.sections] == [
        (("배포 스크립트",), 1),
        (("배포 스크립트", "단계"), 13),
        (("배포 스크립트", "단계"), 17),  # same-named siblings stay separate
    ]
    code = note.sections[0].text.splitlines()
    assert code[0] == "# 이것은 제목이 아니라 주석"
    assert "## 이것도 제목이 아님" in code
    assert "    들여쓰기 유지" in code
    assert note.tags == ()


def test_obsidian_syntax_rendered():
    note = fixture("obsidian_syntax.md")
    assert note.aliases == ("syntax",)
    lines = note.sections[0].text.splitlines()
    assert lines[0] == "Amazon S3는 글래시어와 다르다. IAM 정책 평가 로직을 보라."
    assert lines[1] == "블록 참조 KMS 와 같은 노트 안 문법 링크."
    assert "Amazon EBS" in lines  # note embed -> its name
    assert not any("png" in line or "excalidraw" in line for line in lines)  # attachments dropped
    assert lines[lines.index("Tip: 시험 팁") + 1] == "정적 웹 호스팅은 S3 만으로 가능하다."
    assert lines[lines.index("Warning") + 1] == "CloudFront 없이 HTTPS 는 안 된다."
    assert "일반 강조, 굵게, 취소, aws s3 cp, 공식 문서," in lines
    assert "남은 텍스트" in lines
    assert "snake_case_name 과 2 * 3 * 4 는 그대로." in lines
    assert lines[-2:] == ["| 클래스 | 비용 |", "| Standard | 높음 |"]
    text = note.sections[0].text
    assert "주석" not in text and "[[" not in text and "**" not in text and "==" not in text


def test_last_heading_without_newline_still_titles():
    assert parse_note("# Only", "dir/only.md").title == "Only"
    assert parse_note("just text", "dir/only.md").title == "only"


def test_to_plain_text_nested_quotes_and_callout_markup():
    assert to_plain_text("> [!NOTE] 제목 **굵게**\n> 본문 [[a|b]]\n>> 중첩") == "Note: 제목 굵게\n본문 b\n중첩"


# ---------------------------------------------------------------- questions


def test_several_questions_with_mixed_labels():
    note = fixture("multi_questions.md")
    q1, q2, q3, q4 = note.questions
    assert [q.number for q in note.questions] == [0, 1, 2, 3]

    assert q1.stem == "Which service decouples producers and consumers?"
    assert q1.answer == ("B",)
    assert q1.explanations == {
        "A": "pub/sub 이라 소비자가 없으면 메시지가 사라진다",
        "C": "컴퓨팅 서비스일 뿐 큐가 아니다",  # nested bullet joins its parent
        "D": "스트리밍용",
    }
    assert q1.headings == ("SQS", "📝 관련 문제", "문제 1")

    assert q2.options["C"] == "Batching with ReceiveMessage MaxNumberOfMessages=10"
    assert q2.answer == ("A", "C")  # "Correct answer: A, C"
    assert q2.explanation == ""

    assert q3.stem == "메시지 순서를 보장하는 큐는?"
    assert q3.answer == ("B",)  # "정답: FIFO queue", matched by option text
    assert q3.explanation == "FIFO 큐는 메시지 그룹 안에서 순서를 보장한다."

    assert q4.answer == ("A", "B")  # "Answer: A and B"
    assert q4.headings == ("SQS", "📝 관련 문제", "문제 2")

    assert note.warnings == [
        "question 5 (line 61): no answer line; not used for practice",
        "question 6 (line 67): no options; not used for practice",
    ]


def test_parse_questions_on_its_own():
    markdown = """Q1. Which?
- A) Amazon S3
- B) Amazon S3 Glacier
- C) AWS Glue

정답: Amazon S3 Glacier

💡 추가 설명:
- ✅ **Amazon S3 Glacier**는 아카이브용
- ❌ Amazon S3 - 비싸다
- AWS Glue DataBrew 는 관계 없음
- (C) AWS Glue: ETL 서비스

**문제:** 두 개 고르기
(A) 하나
(B) 둘
(C) 셋
**정답**: A, C
"""
    first, second = parse_questions(markdown, ("관련 문제",))
    assert first.answer == ("B",)  # the longer name wins over "Amazon S3"
    assert first.explanations == {"B": "Amazon S3 Glacier는 아카이브용", "A": "비싸다", "C": "ETL 서비스"}
    assert first.headings == ("관련 문제",)
    assert second.options == {"A": "하나", "B": "둘", "C": "셋"}
    assert second.answer == ("A", "C")
    assert second.number == 1


@pytest.mark.parametrize(
    ("answer_line", "expected"),
    [
        ("**Answer:** B", ("B",)),
        ("Correct answer: B, D", ("B", "D")),
        ("Answer: A and C", ("A", "C")),
        ("정답: A, C", ("A", "C")),
        ("**정답: A) Amazon S3, D) AWS Lambda**", ("A", "D")),
        ("Answer: (D)", ("D",)),
        ("정답: AWS Lambda, Amazon EC2", ("B", "D")),
        ("Answer: C because it is managed", ("C",)),
    ],
)
def test_answer_forms(answer_line, expected):
    markdown = f"Question: pick\n- A) Amazon S3\n- B) Amazon EC2\n- C) Amazon RDS\n- D) AWS Lambda\n{answer_line}\n"
    [q] = parse_questions(markdown)
    assert q.answer == expected


def test_unlettered_options_and_text_answer():
    markdown = "**Question:** Pick storage.\n**Options:**\n- Amazon S3\n- Amazon EC2\n**Answer:** Amazon S3\n"
    [q] = parse_questions(markdown)
    assert q.options == {"A": "Amazon S3", "B": "Amazon EC2"}
    assert q.answer == ("A",)


def test_answer_on_the_line_after_its_label():
    markdown = "**Question:** pick\n- A) one\n- B) two\n\n**정답:**\n\nB) two\n\n해설: 둘이다\n- **one** -\n"
    [q] = parse_questions(markdown)
    assert (q.answer, q.explanation, q.explanations) == (("B",), "둘이다\n- one -", {})


def test_malformed_blocks_keep_their_numbers():
    markdown = "Question: a?\n- A) x\n- B) y\nAnswer: F\n\nQuestion: b?\n- A) x\n- B) y\nAnswer: B\n"
    found = scan_questions(markdown, (), first_number=2, first_line=40)
    assert found.warnings == ["question 3 (line 40): answer F is not among the options A, B; not used for practice"]
    assert [q.number for q in found.questions] == [3]
    assert found.blocks == 2


def test_question_label_in_a_heading():
    note = parse_note("# T\n### Q3. Which is serverless?\n- A) EC2\n- B) Lambda\n\n정답: B\n", "q.md")
    [q] = note.questions
    assert (q.stem, q.answer, q.headings) == ("Which is serverless?", ("B",), ("T", "Q3. Which is serverless?"))


def test_question_label_inside_code_fence_is_ignored():
    assert scan_questions("```\nQuestion: not real\n- A) x\n```\n").blocks == 0


# ---------------------------------------------------------------- decoding and loading

KOREAN = "---\ntitle: 보안 그룹\ntags: [service/ec2]\n---\n# 보안 그룹\n보안 그룹은 상태 저장(stateful) 방화벽이다.\n"


def test_cp949_note_loads_with_a_warning(tmp_path):
    (tmp_path / "cp949.md").write_bytes(KOREAN.encode("cp949"))
    note = load_note(tmp_path, Path("cp949.md"))
    assert note.title == "보안 그룹" and note.tags == ("service/ec2",)
    assert note.sections[0].text == "보안 그룹은 상태 저장(stateful) 방화벽이다."
    assert note.warnings == ["decoded as cp949 (not UTF-8); re-save as UTF-8 to silence this"]


def test_decode_variants():
    assert decode(b"\xef\xbb\xbf" + KOREAN.encode()) == (KOREAN, None)
    assert decode(KOREAN.encode("utf-16")) == (KOREAN, "decoded as UTF-16 (not UTF-8); re-save as UTF-8 to silence this")
    with pytest.raises(NoteSkipped, match="not UTF-8 text and not CP949/EUC-KR: save it as UTF-8"):
        decode("café résumé naïve".encode("cp1252"))  # valid CP949 bytes, but Hanja soup, not Korean
    with pytest.raises(NoteSkipped, match="binary file"):
        decode(bytes(range(1, 32)) * 10)


def test_binary_empty_and_huge_files_are_skipped(tmp_path):
    (tmp_path / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "blank.md").write_text(" \n\t\n\u3000\n", encoding="utf-8")
    (tmp_path / "huge.md").write_bytes(b"a" * (MAX_NOTE_BYTES + MAX_NOTE_BYTES // 4))
    reasons = {}
    for name in ("image.md", "empty.md", "blank.md", "huge.md"):
        with pytest.raises(NoteSkipped) as skipped:
            load_note(tmp_path, tmp_path / name)
        reasons[name] = str(skipped.value)
    assert reasons == {
        "image.md": "binary file",
        "empty.md": "empty note",
        "blank.md": "empty note",
        "huge.md": "too large: 2.5 MB (limit 2 MB)",
    }


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    note = tmp_path / "locked.md"
    note.write_text("# x\n", encoding="utf-8")

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", deny)
    with pytest.raises(NoteSkipped, match="cannot read: permission denied"):
        load_note(tmp_path, note)


def test_path_is_relative_posix(tmp_path):
    (tmp_path / "AWS" / "SAA").mkdir(parents=True)
    (tmp_path / "AWS" / "SAA" / "vpc.md").write_text("# VPC\n본문\n", encoding="utf-8")
    assert load_note(tmp_path, Path("AWS/SAA/vpc.md")).path == "AWS/SAA/vpc.md"


# ---------------------------------------------------------------- speed


@pytest.mark.parametrize(
    "line",
    [
        "가" * 500_000,
        "*a " * 170_000,
        "[" * 500_000,
        "[a](" * 125_000,
        "<!--" * 125_000,
        "`a " * 170_000,
        "#a " * 170_000,
        "![x](data:image/png;base64," + "A" * 500_000 + ")",
    ],
    ids=["hangul", "stars", "brackets", "links", "comments", "backticks", "hashes", "data-uri"],
)
def test_pathological_500kb_line_is_fast(line):
    start = time.perf_counter()
    note = parse_note(f"# H\n{line}\n**Question:** q\n- A) {line}\n정답: {line}\n", "long.md")
    assert time.perf_counter() - start < 5  # ~0.05-0.5 s; quadratic behaviour would take minutes
    assert note.sections[0].headings == ("H",)


def test_thousand_typical_notes_parse_quickly():
    texts = [p.read_text(encoding="utf-8") for p in sorted(FIXTURES.glob("*.md"))]
    if SEED.exists():
        texts.append(SEED.read_text(encoding="utf-8"))
    start = time.perf_counter()
    for i in range(1000):
        parse_note(texts[i % len(texts)], f"n{i}.md")
    assert time.perf_counter() - start < 10  # about 1 s on a busy 2-core machine
