"""Bring the index in step with the vault, doing only the work that changed notes need.

Unchanged files are recognised by size and mtime without being read; changed files by content
hash; chunks by a hash of exactly what is embedded, so a renamed note or a moved section costs
no embedding. The embedding model is loaded only when some text has never been embedded.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from index import lexical
from index.chunk import Chunk, chunk_note
from index.embedder import Embedder
from index.note import Note, NoteSkipped
from index.store import DB_NAME, SCHEMA_VERSION, Store

NOTE_SUFFIXES = (".md", ".markdown")
EMBED_BATCH = 64
LOCK_WAIT_SECONDS = 120

Progress = Callable[[str, int, int], None]


class SyncError(Exception):
    """The sync could not run at all; the message says how to fix it."""


@dataclass
class SyncReport:
    notes: int = 0
    chunks: int = 0
    embedded: int = 0
    removed: int = 0
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    rebuilt: str | None = None
    model_loaded: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class _Plan:
    parsed: dict[str, tuple[Note, os.stat_result, str]] = field(default_factory=dict)
    touched: dict[str, os.stat_result] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    gone: set[str] = field(default_factory=set)  # indexed paths whose chunks must go
    vanished_skips: set[str] = field(default_factory=set)  # skipped before, fine or gone now


def scan(vault: Path) -> dict[str, Path]:
    """Notes below the vault, skipping Obsidian's and git's hidden folders."""
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(vault):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.lower().endswith(NOTE_SUFFIXES) and not name.startswith("."):
                path = Path(folder) / name
                found[path.relative_to(vault).as_posix()] = path
    return found


def sync(vault: Path, store: Store, embedder: Embedder, progress: Progress | None = None) -> SyncReport:
    from filelock import FileLock, Timeout

    started = time.perf_counter()
    vault = Path(vault).expanduser().resolve()
    if not vault.is_dir():
        raise SyncError(f"Notes folder {vault} does not exist - pass --notes DIR or set TUTOR_NOTES")
    store.dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(store.dir / "write.lock"))
    try:
        lock.acquire(timeout=LOCK_WAIT_SECONDS)
    except Timeout as exc:
        raise SyncError(
            f"Another sync of this vault has held {lock.lock_file} for {LOCK_WAIT_SECONDS} s - "
            "wait for it to finish and run 'tutor index' again"
        ) from exc
    try:
        report = _sync_locked(vault, store, embedder, progress or (lambda *_: None))
    finally:
        lock.release()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _sync_locked(vault: Path, store: Store, embedder: Embedder, progress: Progress) -> SyncReport:
    report = SyncReport()
    manifest = store.manifest()
    rebuild = _rebuild_reason(store, manifest, embedder)
    with store.connect() as con:
        known = {p: (s, m, h) for p, s, m, h in con.execute("SELECT path, size, mtime_ns, sha FROM notes")}
        known_skips = {row[0] for row in con.execute("SELECT path FROM skipped")}
    files = scan(vault)
    plan = _plan(vault, files, known, rebuild=rebuild is not None, progress=progress)
    report.deleted = sorted(set(known) - set(files))
    plan.gone |= set(report.deleted) | {p for p in plan.skipped if p in known}
    if rebuild:
        plan.gone |= set(known)
    plan.vanished_skips = known_skips - set(plan.skipped)

    chunks = {path: chunk_note(note, embedder.count_tokens, embedder.max_tokens) for path, (note, _, _) in plan.parsed.items()}
    vectors = _embed_missing(store, embedder, [c for cs in chunks.values() for c in cs], report, progress)

    generation = manifest.get("generation")
    damaged = None if rebuild or generation is None else store.vectors_damaged(generation, manifest.get("faiss_bytes"))
    report.rebuilt = rebuild or damaged
    if plan.parsed or plan.gone or report.rebuilt or generation is None:
        _write_generation(store, manifest, plan, chunks, vectors, embedder.model_id, report, progress, rebuild is not None)
    else:  # nothing for the vectors: record new mtimes and skips, without touching FAISS
        with store.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            _write_notes(con, plan, chunks, [], [])
            _write_manifest(con, {"last_sync": time.time()})
            con.execute("COMMIT")

    report.changed = sorted(plan.parsed)
    report.model_loaded = bool(getattr(embedder, "loaded", report.embedded > 0))
    with store.connect() as con:
        report.notes = con.execute("SELECT COUNT(*) FROM notes").fetchone()[0]
        report.chunks = con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        report.skipped = [{"path": p, "reason": r} for p, r in con.execute("SELECT path, reason FROM skipped ORDER BY path")]
        report.warnings = [
            {"path": p, "warning": w}
            for p, ws in con.execute("SELECT path, warnings FROM notes WHERE warnings != '[]' ORDER BY path")
            for w in json.loads(ws)
        ]
    return report


def _write_generation(store, manifest, plan, chunks, vectors, model_id, report, progress, full_rebuild: bool) -> None:
    """A complete new FAISS file first, then the one transaction that makes it current."""
    progress("write", 0, 1)
    generation = manifest.get("generation")
    index, repaired = _current_index(store, generation, rebuild=full_rebuild)
    with store.connect() as con:
        if repaired and not report.rebuilt:
            report.rebuilt = repaired
        old_ids = _chunk_ids(con, plan.gone | set(plan.parsed))
        rows, next_id = _new_rows(chunks, model_id, manifest.get("next_id", 1))
        index = _updated_index(store, con, index, old_ids, rows, vectors, manifest.get("dimension"), repaired is not None)
        generation = (generation or 0) + 1
        size = store.write_faiss(index, generation)
        report.removed = _removed_content(con, old_ids, {h for _, _, h in rows})
        con.execute("BEGIN IMMEDIATE")
        _write_notes(con, plan, chunks, rows, old_ids)
        _write_manifest(con, {
            "schema_version": SCHEMA_VERSION, "model_id": model_id, "dimension": index.d,
            "lexical_version": lexical.VERSION, "generation": generation, "faiss_bytes": size, "next_id": next_id, "last_sync": time.time(),
        })
        con.execute("COMMIT")
    store.remove_stale_files(keep=generation)
    _remove_older_schemas(store)
    progress("write", 1, 1)


def _rebuild_reason(store: Store, manifest: dict, embedder: Embedder) -> str | None:
    old_model = manifest.get("model_id")
    if old_model is not None and old_model != embedder.model_id:
        return f"embedding model changed from {old_model} to {embedder.model_id}: rebuilding"
    older = [p.name for p in store.dir.glob("index.v*.sqlite") if p.name != DB_NAME]
    if old_model is None and older:
        return f"index schema changed ({', '.join(older)} → v{SCHEMA_VERSION}): rebuilding"
    words = manifest.get("lexical_version", 1)
    if old_model is not None and words != lexical.VERSION:
        return f"word index changed (v{words} → v{lexical.VERSION}): re-reading the notes, vectors kept"
    return None


def _plan(vault: Path, files, known, rebuild: bool, progress: Progress) -> _Plan:
    """What changed. Skipped files are looked at again each time: they are few, and a fixed
    file or a newer parser should not stay skipped."""
    plan = _Plan()
    todo = []
    for rel, path in files.items():
        try:
            stat = path.stat()
        except OSError as exc:
            plan.skipped[rel] = f"cannot read: {exc.strerror or exc}"
            continue
        mark = (stat.st_size, stat.st_mtime_ns)
        if not rebuild and known.get(rel, (None, None))[:2] == mark:
            continue
        todo.append((rel, path, stat))
    if todo:
        from index.parse import MAX_NOTE_BYTES, load_note  # LangChain's import: only when needed
    for done, (rel, path, stat) in enumerate(todo, 1):
        progress("parse", done, len(todo))
        if stat.st_size > MAX_NOTE_BYTES:  # say so without reading it
            plan.skipped[rel] = f"too large: {stat.st_size / 2**20:.1f} MB (limit {MAX_NOTE_BYTES // 2**20} MB)"
            continue
        try:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            plan.skipped[rel] = f"cannot read: {exc.strerror or exc}"
            continue
        if not rebuild and rel in known and known[rel][2] == sha:
            plan.touched[rel] = stat
            continue
        try:
            plan.parsed[rel] = (load_note(vault, path), stat, sha)
        except NoteSkipped as exc:
            plan.skipped[rel] = str(exc)
    return plan


def _embed_missing(store: Store, embedder: Embedder, chunks: list[Chunk], report: SyncReport, progress: Progress):
    """Vectors for every chunk, embedding only hashes the cache has never seen."""
    by_hash = {c.content_hash(embedder.model_id): c for c in chunks}
    vectors = store.cached_vectors(by_hash)
    missing = [h for h in by_hash if h not in vectors]
    for start in range(0, len(missing), EMBED_BATCH):
        progress("embed", start, len(missing))
        batch = missing[start : start + EMBED_BATCH]
        embedded = embedder.embed_batch([by_hash[h].embed_text for h in batch])
        fresh = dict(zip(batch, embedded))
        store.cache_vectors(fresh)
        vectors.update(fresh)
        report.embedded += len(batch)
    if missing:
        progress("embed", len(missing), len(missing))
    return vectors


def _current_index(store: Store, generation: int | None, rebuild: bool):
    """The committed FAISS index, or None with the reason it must be rebuilt from the cache."""
    from index.store import IndexDamaged

    if generation is None or rebuild:
        return None, None
    try:
        return store.read_faiss(generation), None
    except IndexDamaged as exc:
        return None, f"{exc}: rebuilt from cached vectors"


def _chunk_ids(con, paths: set[str]) -> list[int]:
    ids: list[int] = []
    paths_list = list(paths)
    for start in range(0, len(paths_list), 500):
        batch = paths_list[start : start + 500]
        marks = ",".join("?" * len(batch))
        ids += [r[0] for r in con.execute(f"SELECT id FROM chunks WHERE path IN ({marks})", batch)]
    return ids


def _new_rows(chunks: dict[str, list[Chunk]], model_id: str, next_id: int):
    rows = []
    for path in sorted(chunks):
        for chunk in chunks[path]:
            rows.append((next_id, chunk, chunk.content_hash(model_id)))
            next_id += 1
    return rows, next_id


def _removed_content(con, old_ids: list[int], new_hashes: set[str]) -> int:
    """Chunks whose text is gone, not merely re-numbered because their note changed."""
    old = []
    for start in range(0, len(old_ids), 500):
        batch = old_ids[start : start + 500]
        old += [r[0] for r in con.execute(f"SELECT hash FROM chunks WHERE id IN ({','.join('?' * len(batch))})", batch)]
    return sum(1 for h in old if h not in new_hashes)


def _updated_index(store: Store, con, index, old_ids, rows, vectors, dimension, repair: bool):
    import faiss

    if index is None:
        dim = len(next(iter(vectors.values()))) if vectors else (dimension or 1)
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if repair:  # keep every chunk that is not being replaced, from the cache
            replaced = set(old_ids)
            keep = [(i, h) for i, h in con.execute("SELECT id, hash FROM chunks") if i not in replaced]
            cached = store.cached_vectors(h for _, h in keep)
            if keep:
                index.add_with_ids(
                    np.stack([cached[h] for _, h in keep]), np.array([i for i, _ in keep], dtype=np.int64)
                )
    if old_ids:
        index.remove_ids(np.array(old_ids, dtype=np.int64))
    if rows:
        index.add_with_ids(
            np.stack([vectors[h] for _, _, h in rows]).astype(np.float32),
            np.array([i for i, _, _ in rows], dtype=np.int64),
        )
    return index


def _write_notes(con, plan: _Plan, chunks, rows, old_ids) -> None:
    for start in range(0, len(old_ids), 500):
        batch = old_ids[start : start + 500]
        marks = ",".join("?" * len(batch))
        con.execute(f"DELETE FROM chunks WHERE id IN ({marks})", batch)
        con.execute(f"DELETE FROM chunk_terms WHERE rowid IN ({marks})", batch)
    for path in plan.gone - set(plan.parsed):
        con.execute("DELETE FROM notes WHERE path = ?", (path,))
        con.execute("DELETE FROM note_tags WHERE path = ?", (path,))
    for path, (note, stat, sha) in plan.parsed.items():
        con.execute(
            "INSERT OR REPLACE INTO notes VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                path, stat.st_size, stat.st_mtime_ns, sha, note.title, json.dumps(list(note.tags)),
                json.dumps(list(note.aliases), ensure_ascii=False), note.created, note.modified,
                json.dumps(note.warnings, ensure_ascii=False),
                json.dumps([q.to_json() for q in note.questions], ensure_ascii=False),
            ),
        )
        con.execute("DELETE FROM note_tags WHERE path = ?", (path,))
        con.executemany("INSERT OR IGNORE INTO note_tags VALUES (?, ?)", [(path, t) for t in note.tags])
        con.execute("DELETE FROM skipped WHERE path = ?", (path,))
    for path, stat in plan.touched.items():
        con.execute("UPDATE notes SET size = ?, mtime_ns = ? WHERE path = ?", (stat.st_size, stat.st_mtime_ns, path))
    con.executemany("INSERT OR REPLACE INTO skipped VALUES (?, ?)", plan.skipped.items())
    con.executemany("DELETE FROM skipped WHERE path = ?", [(p,) for p in plan.vanished_skips])
    con.executemany(
        "INSERT INTO chunks(id, path, ordinal, headings, line, text, hash) VALUES (?,?,?,?,?,?,?)",
        [
            (cid, c.note, c.ordinal, json.dumps(list(c.headings), ensure_ascii=False), c.line, c.text, h)
            for cid, c, h in rows
        ],
    )
    con.executemany(
        "INSERT INTO chunk_terms(rowid, terms) VALUES (?, ?)",
        [(cid, " ".join(lexical.terms(c.embed_text))) for cid, c, _ in rows],
    )
    con.execute("DELETE FROM vectors WHERE hash NOT IN (SELECT hash FROM chunks)")


def _write_manifest(con, entries: dict) -> None:
    con.executemany("INSERT OR REPLACE INTO manifest VALUES (?, ?)", [(k, json.dumps(v)) for k, v in entries.items()])


def _remove_older_schemas(store: Store) -> None:
    for path in store.dir.glob("index.v*.sqlite*"):
        if not path.name.startswith(DB_NAME):
            path.unlink(missing_ok=True)
