"""The `tutor` command's contract: JSON shapes, batch search, and errors that say what to do."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tests.conftest import REPO, write_note
from tutor.cli import cli


@pytest.fixture
def vault(tmp_path):
    root = tmp_path / "vault"
    write_note(root, "s3.md", "s3-note", {"핵심": "Amazon S3는 객체 스토리지다."}, tags=("service/s3",))
    write_note(root, "emr.md", "emr-note", {"핵심": "Amazon EMR은 Spark 배치 처리 서비스다."}, tags=("service/emr",))
    (root / "broken.md").write_bytes(b"\x00binary\x00")
    return root


def invoke(*args, input=None):
    return CliRunner().invoke(cli, list(map(str, args)), input=input, catch_exceptions=False)


def test_index_json_reports_counts_and_skips(vault, fake_embedder):
    result = invoke("index", "--notes", vault, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["notes"] == 2 and report["chunks"] == 2 and report["embedded"] == 2
    assert report["removed"] == 0 and isinstance(report["seconds"], float)
    assert report["skipped"] == [{"path": "broken.md", "reason": report["skipped"][0]["reason"]}]
    assert "binary" in report["skipped"][0]["reason"]


def test_search_json_shape_and_tag_filter(vault, fake_embedder):
    invoke("index", "--notes", vault, "--json")
    result = invoke("search", "Spark 배치", "--notes", vault, "--json", "--k", "2")
    hits = json.loads(result.output)
    assert hits[0]["note"] == "emr.md" and hits[0]["heading"] == "emr-note 노트 > 핵심"
    assert set(hits[0]) >= {"note", "heading", "score", "text"} and "Spark" in hits[0]["text"]
    only_s3 = json.loads(invoke("search", "Spark 배치", "--notes", vault, "--json", "--tag", "service/s3").output)
    assert [h["note"] for h in only_s3] == ["s3.md"]


def test_search_reads_queries_from_stdin_one_json_list_per_line(vault, fake_embedder):
    invoke("index", "--notes", vault)
    result = invoke("search", "-", "--notes", vault, "--json", input="객체 스토리지\n\nSpark 배치\n")
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert [json.loads(line)[0]["note"] for line in lines] == ["s3.md", "emr.md"]


def test_human_output_lists_ranked_sections(vault, fake_embedder):
    invoke("index", "--notes", vault)
    result = invoke("search", "객체 스토리지", "--notes", vault)
    assert result.output.startswith("1. ") and "s3.md" in result.output.splitlines()[0]


def test_notes_default_comes_from_env(vault, fake_embedder, monkeypatch):
    monkeypatch.setenv("TUTOR_NOTES", str(vault))
    assert json.loads(invoke("index", "--json").output)["notes"] == 2


def test_missing_index_says_which_command_to_run(tmp_path, fake_embedder):
    result = CliRunner().invoke(cli, ["search", "S3", "--notes", str(tmp_path)])
    assert result.exit_code == 1
    assert f"No index for {tmp_path} - run 'tutor index --notes {tmp_path}'" in result.output


def test_index_built_with_another_model_asks_for_a_rebuild(vault, fake_embedder, monkeypatch):
    from index.embedder import register_embedder
    from tests.conftest import FakeEmbedder

    invoke("index", "--notes", vault)

    class Other(FakeEmbedder):
        model_id = "other"

    register_embedder("other", Other)
    monkeypatch.setenv("TUTOR_EMBED_MODEL", "other")
    result = CliRunner().invoke(cli, ["search", "S3", "--notes", str(vault)])
    assert result.exit_code == 1 and "was built with fake-trigram-64, not other" in result.output
    assert "tutor index" in result.output


def test_missing_vault_is_a_clear_error(tmp_path, fake_embedder):
    result = CliRunner().invoke(cli, ["index", "--notes", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_help_imports_no_heavy_library():
    code = "import sys; from tutor.cli import cli; print(sorted({'numpy','torch','faiss','sentence_transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_index_reports_generated_questions_made_stale_by_an_edit(vault, fake_embedder):
    from index.note import Question
    from tutor.practice.generated import Citation, GeneratedStore

    invoke("index", "--notes", vault)
    question = Question("Which service stores objects?", {"A": "Amazon S3", "B": "Amazon EMR"}, ("A",), {}, "", (), 0)
    saved = GeneratedStore().save(vault, question, [Citation("s3.md", ("s3-note 노트", "핵심"))], None, {})
    assert json.loads(invoke("index", "--notes", vault, "--json").output)["stale"] == []
    note = vault / "s3.md"
    note.write_text(note.read_text().replace("객체 스토리지다", "객체 스토리지이며 11 9s 내구성을 제공한다"))
    stale = json.loads(invoke("index", "--notes", vault, "--json").output)["stale"]
    assert [s["id"] for s in stale] == [saved.id] and "changed" in stale[0]["problems"][0]
    assert "tutor generate stale" in invoke("index", "--notes", vault).output
