"""Incremental sync, counted with a fake embedder that records what it was asked to embed."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from index.embedder import get_embedder
from index.home import index_dir
from index.store import Store
from index.sync import SyncError, sync
from tests.conftest import write_note

SERVICES = {
    "s3": "Amazon S3는 객체 스토리지로 데이터 레이크의 기반이 된다.",
    "emr": "Amazon EMR은 Spark 클러스터로 대규모 배치 처리를 수행한다.",
    "kinesis": "Kinesis Data Streams는 샤드 단위로 실시간 스트림을 받는다.",
    "glue": "AWS Glue는 서버리스 ETL과 Data Catalog를 제공한다.",
    "athena": "Amazon Athena는 S3 위의 데이터를 SQL로 조회한다.",
}


@pytest.fixture
def vault(tmp_path):
    root = tmp_path / "vault"
    for name, text in SERVICES.items():
        write_note(
            root,
            f"{name}.md",
            f"{name}-note",
            {"🎯 핵심 포인트": text, "📝 설명": f"{name} 설명: " + text * 2, "🔍 주요개념": f"{name} 개념 정리"},
            tags=(f"service/{name}", "usecase/data"),
        )
    return root


def run(vault):
    embedder = get_embedder()
    return sync(vault, Store(index_dir(vault)), embedder), embedder


def search_notes(vault, text, k=3, tags=()):
    store = Store(index_dir(vault))
    return [h.note for h in store.search(get_embedder().embed_query(text), k=k, tags=tags)]


def test_first_sync_embeds_every_chunk(vault, fake_embedder):
    report, embedder = run(vault)
    assert report.notes == 5
    assert report.chunks == 15  # three sections a note, each short enough for one chunk
    assert report.embedded == 15 == len(embedder.inputs)
    assert report.skipped == [] and report.rebuilt is None
    assert "s3-note" in embedder.inputs[0] or any("s3-note" in t for t in embedder.inputs)
    assert search_notes(vault, SERVICES["kinesis"])[0] == "kinesis.md"


def test_embedded_text_carries_title_and_heading_path(vault, fake_embedder):
    _, embedder = run(vault)
    text = next(t for t in embedder.inputs if "EMR은 Spark" in t and "핵심" in t)
    assert text.startswith("emr-note\nemr-note 노트 > 🎯 핵심 포인트\n\n")


def test_no_change_sync_does_not_load_the_model(vault, fake_embedder):
    run(vault)
    report, embedder = run(vault)
    assert report.embedded == 0 and report.changed == [] and report.removed == 0
    assert embedder.loaded is False and report.model_loaded is False


def test_touch_without_edit_reparses_nothing(vault, fake_embedder):
    run(vault)
    os.utime(vault / "s3.md", ns=(1, 1))
    report, embedder = run(vault)
    assert report.changed == [] and not embedder.loaded
    report, _ = run(vault)  # and the new mtime was recorded
    assert report.changed == []


def test_editing_one_note_embeds_only_its_changed_chunk(vault, fake_embedder):
    run(vault)
    path = vault / "emr.md"
    path.write_text(path.read_text().replace("emr 개념 정리", "EMR Serverless는 클러스터 관리가 필요 없다"))
    report, embedder = run(vault)
    assert report.changed == ["emr.md"]
    assert report.embedded == 1
    assert len(embedder.inputs) == 1 and "EMR Serverless" in embedder.inputs[0]
    assert report.removed == 1 and report.chunks == 15
    assert search_notes(vault, "EMR Serverless는 클러스터 관리가 필요 없다")[0] == "emr.md"


def test_deleting_a_note_removes_its_chunks(vault, fake_embedder):
    run(vault)
    (vault / "glue.md").unlink()
    report, embedder = run(vault)
    assert report.deleted == ["glue.md"] and report.removed == 3
    assert report.notes == 4 and report.chunks == 12 and not embedder.loaded
    assert "glue.md" not in search_notes(vault, SERVICES["glue"], k=5)


def test_deleting_a_section_removes_only_that_section(vault, fake_embedder):
    run(vault)
    path = vault / "athena.md"
    path.write_text(path.read_text().split("## 🔍 주요개념")[0])
    report, _ = run(vault)
    assert report.removed == 1 and report.embedded == 0 and report.chunks == 14


def test_renamed_note_is_not_re_embedded(vault, fake_embedder):
    run(vault)
    (vault / "storage").mkdir()
    (vault / "s3.md").rename(vault / "storage" / "s3-renamed.md")
    report, embedder = run(vault)
    assert report.embedded == 0 and not embedder.loaded
    assert report.deleted == ["s3.md"] and report.changed == ["storage/s3-renamed.md"]
    assert report.removed == 0 and report.chunks == 15
    assert search_notes(vault, SERVICES["s3"])[0] == "storage/s3-renamed.md"


def test_crash_before_commit_leaves_previous_index_usable_and_next_sync_repairs(vault, fake_embedder, monkeypatch):
    run(vault)
    path = vault / "kinesis.md"
    path.write_text(path.read_text().replace("kinesis 개념 정리", "Enhanced fan-out은 소비자마다 2MB/s를 준다"))

    def crash(self, con, *args):
        raise KeyboardInterrupt("killed")

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr("index.sync._write_manifest", crash)
        run(vault)
    # the old generation still answers, and knows nothing of the edit
    hits = Store(index_dir(vault)).search(get_embedder().embed_query("Enhanced fan-out 2MB/s"), k=15)
    assert len(hits) == 15 and not any("fan-out" in h.text for h in hits)
    report, embedder = run(vault)
    assert report.changed == ["kinesis.md"]
    assert report.embedded == 0  # the vector was cached before the crash
    assert search_notes(vault, "Enhanced fan-out은 소비자마다 2MB/s를 준다")[0] == "kinesis.md"
    assert len(list(index_dir(vault).glob("vectors.*"))) == 1  # the orphan of the crash is gone


def test_crash_while_embedding_resumes_without_redoing_work(vault, fake_embedder, monkeypatch):
    monkeypatch.setattr("index.sync.EMBED_BATCH", 4)
    calls = {"n": 0}
    real = fake_embedder.embed_batch

    def flaky(self, texts, query=False):
        calls["n"] += 1
        if calls["n"] == 3:
            raise MemoryError("killed mid-way")
        return real(self, texts, query)

    monkeypatch.setattr(fake_embedder, "embed_batch", flaky)
    with pytest.raises(MemoryError):
        run(vault)
    assert not Store(index_dir(vault)).exists()
    monkeypatch.setattr(fake_embedder, "embed_batch", real)
    report, _ = run(vault)
    assert report.embedded == 15 - 8 and report.chunks == 15


def test_damaged_vectors_file_is_rebuilt_from_cache(vault, fake_embedder):
    run(vault)
    store = Store(index_dir(vault))
    store.faiss_path(store.manifest()["generation"]).write_bytes(b"garbage")
    report, embedder = run(vault)
    assert report.rebuilt and "rebuilt from cached vectors" in report.rebuilt
    assert report.embedded == 0 and not embedder.loaded
    assert search_notes(vault, SERVICES["athena"])[0] == "athena.md"


def test_different_model_triggers_full_rebuild(vault, fake_embedder):
    from tests.conftest import FakeEmbedder

    run(vault)

    class OtherModel(FakeEmbedder):
        model_id = "other-model"

    report = sync(vault, Store(index_dir(vault)), OtherModel(dim=32))
    assert "embedding model changed from fake-trigram-64 to other-model" in report.rebuilt
    assert report.embedded == 15 and report.chunks == 15
    assert Store(index_dir(vault)).manifest()["dimension"] == 32


def test_an_older_word_index_is_refused_then_reread_without_embedding(vault, fake_embedder, monkeypatch):
    """Terms tokenized another way would silently miss matches: the retriever says how to fix
    it, and the next sync rewrites them from the notes while every vector is kept."""
    from index import lexical
    from tutor.retrieve import RetrievalError, Retriever

    with monkeypatch.context() as older:
        older.setattr(lexical, "VERSION", lexical.VERSION - 1)
        run(vault)
    with pytest.raises(RetrievalError, match="word index made by another version.*tutor index --notes"):
        Retriever(vault)
    report, embedder = run(vault)
    assert "word index changed" in report.rebuilt and report.embedded == 0 and not embedder.loaded
    assert Store(index_dir(vault)).manifest()["lexical_version"] == lexical.VERSION
    assert Retriever(vault).search("Athena", k=1, mode="lexical")[0].note == "athena.md"


def test_tag_filter_matches_tag_and_children(vault, fake_embedder):
    run(vault)
    assert set(search_notes(vault, "데이터", k=5, tags=("service/emr",))) == {"emr.md"}
    assert len(search_notes(vault, "데이터", k=5, tags=("service",))) == 5
    assert search_notes(vault, "데이터", k=5, tags=("service/rds",)) == []


def test_one_section_one_hit(tmp_path, fake_embedder):
    vault = tmp_path / "v"
    long = "\n\n".join(f"문단 {i}: Amazon Redshift는 컬럼형 데이터 웨어하우스다. " * 12 for i in range(12))
    write_note(vault, "redshift.md", "redshift", {"긴 설명": long})
    report, _ = run(vault)
    assert report.chunks > 3
    hits = Store(index_dir(vault)).search(get_embedder().embed_query("Redshift 컬럼형"), k=5)
    assert len(hits) == 1


def test_bad_files_are_skipped_with_reasons_and_the_rest_indexed(vault, fake_embedder):
    (vault / "empty.md").write_text("   \n")
    (vault / "binary.md").write_bytes(b"\x00\x01\x02PNG\x00" * 50)
    (vault / ".obsidian").mkdir()
    (vault / ".obsidian" / "workspace.md").write_text("# not a note")
    report, _ = run(vault)
    reasons = {s["path"]: s["reason"] for s in report.skipped}
    assert set(reasons) == {"empty.md", "binary.md"}
    assert "empty" in reasons["empty.md"] and "binary" in reasons["binary.md"]
    assert report.notes == 5
    (vault / "binary.md").unlink()
    report, _ = run(vault)
    assert [s["path"] for s in report.skipped] == ["empty.md"]


def test_a_note_that_turns_unreadable_leaves_the_index(vault, fake_embedder):
    run(vault)
    (vault / "s3.md").write_bytes(b"\x00\xff" * 100)
    report, _ = run(vault)
    assert report.notes == 4 and report.removed == 3
    assert report.skipped[0]["path"] == "s3.md"


def test_second_writer_waits_then_gives_a_clear_error(vault, fake_embedder, monkeypatch):
    from filelock import FileLock

    monkeypatch.setattr("index.sync.LOCK_WAIT_SECONDS", 0.2)
    store = Store(index_dir(vault))
    store.dir.mkdir(parents=True)
    with FileLock(str(store.dir / "write.lock")):
        held = {}
        thread = threading.Thread(target=lambda: held.setdefault("r", _catch(lambda: run(vault))))
        thread.start()
        thread.join()
    assert isinstance(held["r"], SyncError) and "Another sync" in str(held["r"])


def test_readers_never_see_a_half_written_index(vault, fake_embedder):
    run(vault)
    errors, stop = [], threading.Event()

    def reader():
        store = Store(index_dir(vault))
        query = get_embedder().embed_query("Amazon")
        while not stop.is_set():
            try:
                hits = store.search(query, k=15)
                assert len(hits) == 15, len(hits)
                assert all(h.text for h in hits)
            except Exception as exc:  # collected and asserted on below
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(8):
        path = vault / "emr.md"
        path.write_text(path.read_text().replace("개념", f"개념{i}"))
        run(vault)
    stop.set()
    thread.join()
    assert errors == []


def test_missing_vault_is_a_clear_error(tmp_path, fake_embedder):
    with pytest.raises(SyncError, match="does not exist"):
        run(tmp_path / "nope")


def _catch(fn):
    try:
        return fn()
    except Exception as exc:
        return exc


def test_huge_note_is_skipped_without_being_read(vault, fake_embedder, monkeypatch):
    (vault / "dump.md").write_text("# dump\n" + "가" * (3 * 2**20 // 3 + 10))
    real_read = Path.read_bytes
    monkeypatch.setattr(
        "pathlib.Path.read_bytes", lambda self: pytest.fail("read it") if self.name == "dump.md" else real_read(self)
    )
    report, _ = run(vault)
    assert report.skipped == [{"path": "dump.md", "reason": "too large: 3.0 MB (limit 2 MB)"}]


def test_a_stray_invalid_byte_keeps_the_note_with_a_warning(vault, fake_embedder):
    data = "---\ntitle: damaged\n---\n# 손상된 노트\n\nAmazon S3는 객체 스토리지다. ".encode() * 3
    (vault / "damaged.md").write_bytes(data[:40] + b"\xff" + data[40:])
    report, _ = run(vault)
    assert report.notes == 6 and report.skipped == []
    assert report.warnings == [{"path": "damaged.md", "warning": report.warnings[0]["warning"]}]
    assert "not valid UTF-8" in report.warnings[0]["warning"]
