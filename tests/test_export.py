"""Export: markdown that parses back to the same questions, a valid Anki deck, safe targets."""
from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile

import pytest
from click.testing import CliRunner

from index.note import QuestionRecord, question_id
from index.parse import parse_note, parse_questions
from tests.conftest import REPO, SEEDS
from tutor.cli import cli
from tutor.practice.export import ANKI_MODEL_ID, ExportRefused, check_target, to_markdown, write_anki

SEED = SEEDS / "000_282ce37f247d4922.txt"


def records_in(paths) -> list[QuestionRecord]:
    records = []
    for path in paths:
        note = parse_note(path.read_text(encoding="utf-8"), path.name)
        records += [QuestionRecord(question_id(note.path, q.number), note.path, note.title, note.tags, q)
                    for q in note.questions]
    return records


@pytest.fixture(scope="module")
def records() -> list[QuestionRecord]:
    """Every question of the starter vault and the seed note: real wording, one and two answers."""
    found = records_in([*sorted((REPO / "notes").glob("*.md")), *([SEED] if SEED.exists() else [])])
    assert {len(r.question.answer) for r in found} == {1, 2}
    return found


FIELDS = ("stem", "options", "answer", "explanations")


def test_markdown_parses_back_to_the_same_questions(records):
    markdown = to_markdown(records)
    for parsed in (parse_questions(markdown), parse_note(markdown, "export.md").questions):
        assert len(parsed) == len(records)
        for record, back in zip(records, parsed):
            assert [getattr(back, f) for f in FIELDS] == [getattr(record.question, f) for f in FIELDS], record.id
    assert "## 📝 관련 문제" in markdown
    for record in records:
        q = record.question
        assert "**정답: " + ", ".join(f"{letter}) {q.options[letter]}" for letter in q.answer) + "**" in markdown
        assert f"> 출처: {record.note} › " in markdown
        for letter, why in q.explanations.items():
            if letter not in q.answer:
                assert f"- **{q.options[letter]}** - {why.splitlines()[0]}" in markdown, record.id


def test_prose_explanation_is_kept_when_no_option_is_explained():
    text = ("## 📝 관련 문제\n\n**Question:** Pick one?\n\n- A) Amazon S3\n- B) Amazon EBS\n\n"
            "**정답: A**\n\n해설: 객체 스토리지는 S3 입니다.\n")
    (question,) = parse_questions(text)
    record = QuestionRecord("n#1", "n.md", "n", (), question)
    (back,) = parse_questions(to_markdown([record]))
    assert back.explanation == question.explanation == "객체 스토리지는 S3 입니다." and back.answer == ("A",)


def test_refuses_to_overwrite_or_write_inside_the_vault(tmp_path):
    vault, out = tmp_path / "vault", tmp_path / "out.md"
    vault.mkdir()
    check_target(out, vault, force=False)  # a new file outside the vault is fine
    out.write_text("mine")
    with pytest.raises(ExportRefused, match="already exists.*--force"):
        check_target(out, vault, force=False)
    with pytest.raises(ExportRefused, match="inside the vault.*read a markdown export there as a note.*--force"):
        check_target(vault / "sub" / "export.md", vault, force=False)
    check_target(out, vault, force=True)
    check_target(vault / "export.md", vault, force=True)


def anki_notes(apkg, tmp_path) -> tuple[list[tuple[str, str]], dict]:
    with zipfile.ZipFile(apkg) as package:
        assert "collection.anki2" in package.namelist()
        package.extract("collection.anki2", tmp_path)
    con = sqlite3.connect(tmp_path / "collection.anki2")
    try:
        notes = con.execute("SELECT guid, flds FROM notes ORDER BY guid").fetchall()
        models = json.loads(con.execute("SELECT models FROM col").fetchone()[0])
    finally:
        con.close()
    return notes, models


def test_anki_deck_is_a_zip_holding_a_collection_with_every_question(records, tmp_path):
    write_anki(records, tmp_path / "deck.apkg")
    notes, models = anki_notes(tmp_path / "deck.apkg", tmp_path / "first")
    assert len(notes) == len(records) and str(ANKI_MODEL_ID) in models
    glue = next(r for r in records if r.note == "glue-etl-data-catalog.md")
    front, back = next(flds for _, flds in notes if glue.question.stem in flds).split("\x1f")
    assert "Select 2" in front and "A) Run an AWS Glue crawler" in front and "정답" not in front
    assert "정답: A) Run an AWS Glue crawler" in back and "E) Enable AWS Glue job bookmarks" in back
    assert "Manually run CREATE TABLE statements in Athena whenever a new column appears</b> - 수동 작업" in back
    assert glue.note in back
    write_anki(records, tmp_path / "again.apkg")
    again, _ = anki_notes(tmp_path / "again.apkg", tmp_path / "second")
    assert [g for g, _ in again] == [g for g, _ in notes]  # stable ids: re-import updates, never duplicates


# ---------------------------------------------------------------- tutor export


@pytest.fixture
def vault(tmp_path, fake_embedder):
    root = tmp_path / "vault"
    root.mkdir()
    for name in ("glue-etl-data-catalog.md", "athena-serverless-query.md", "s3-glacier-retrieval-options.md"):
        shutil.copy(REPO / "notes" / name, root / name)
    assert CliRunner().invoke(cli, ["index", "--notes", str(root)]).exit_code == 0
    return root


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_export_markdown_by_tag_then_refuses_to_overwrite(vault, tmp_path):
    out = tmp_path / "exports" / "etl.md"
    result = run("export", "--notes", vault, "--out", out, "--tag", "concept/etl")
    assert result.exit_code == 0 and "Wrote 1 question to" in result.output
    assert [q.stem for q in parse_questions(out.read_text(encoding="utf-8"))] == [
        r.question.stem for r in records_in([vault / "glue-etl-data-catalog.md"])]
    again = run("export", "--notes", vault, "--out", out)
    assert again.exit_code == 1 and "already exists" in again.output and "--force" in again.output
    assert len(parse_questions(out.read_text(encoding="utf-8"))) == 1  # untouched
    assert run("export", "--notes", vault, "--out", out, "--force").exit_code == 0
    assert len(parse_questions(out.read_text(encoding="utf-8"))) == 3


def test_cli_export_refuses_the_vault_and_infers_anki_from_the_suffix(vault, tmp_path):
    inside = run("export", "--notes", vault, "--out", vault / "export.md")
    assert inside.exit_code == 1 and "inside the vault" in inside.output and not (vault / "export.md").exists()
    result = run("export", "--notes", vault, "--out", tmp_path / "deck.apkg")
    assert result.exit_code == 0 and "(anki)" in result.output
    assert len(anki_notes(tmp_path / "deck.apkg", tmp_path)[0]) == 3


def test_cli_export_generated_only_without_any_says_how_to_make_some(vault, tmp_path):
    result = run("export", "--notes", vault, "--out", tmp_path / "gen.md", "--generated-only")
    assert result.exit_code == 1 and "tutor generate distractors" in result.output
    assert not (tmp_path / "gen.md").exists()


def test_generated_questions_are_listed_practised_and_exported_like_the_notes_own(vault, tmp_path):
    from dataclasses import replace

    from tutor.practice.generated import Citation, GeneratedStore

    (seed,) = records_in([vault / "glue-etl-data-catalog.md"])
    variant = replace(seed.question, stem="Which two Glue features keep a nightly ETL job incremental and its schema current? (Select 2)")
    item = GeneratedStore().save(vault, variant, [Citation(seed.note, seed.question.headings)], seed.id, {})
    listed = json.loads(run("quiz", "--notes", vault, "--list", "--json").output)
    assert item.id in [row["id"] for row in listed] and len(listed) == 4
    assert run("export", "--notes", vault, "--out", tmp_path / "gen.md", "--generated-only").exit_code == 0
    assert [q.stem for q in parse_questions((tmp_path / "gen.md").read_text(encoding="utf-8"))] == [variant.stem]
