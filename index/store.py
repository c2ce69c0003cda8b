"""The index on disk: SQLite for text, metadata and a vector cache; FAISS for search.

Each sync writes a complete new FAISS file `vectors.<generation>.faiss` first and only then
commits the SQLite transaction that names that generation. A crash at any point leaves the
last committed generation whole, and readers only ever open a generation that was committed.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from index.note import Question, QuestionRecord, question_id

SCHEMA_VERSION = 1
DB_NAME = f"index.v{SCHEMA_VERSION}.sqlite"  # a new schema starts a new file; the old stays usable

SCHEMA = """
CREATE TABLE IF NOT EXISTS manifest(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notes(
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha TEXT, title TEXT, tags TEXT,
    aliases TEXT, created TEXT, modified TEXT, warnings TEXT, questions TEXT);
CREATE TABLE IF NOT EXISTS note_tags(path TEXT, tag TEXT, PRIMARY KEY(path, tag));
CREATE INDEX IF NOT EXISTS note_tags_tag ON note_tags(tag);
CREATE TABLE IF NOT EXISTS skipped(path TEXT PRIMARY KEY, reason TEXT);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, ordinal INTEGER, headings TEXT, line INTEGER,
    text TEXT, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE TABLE IF NOT EXISTS vectors(hash TEXT PRIMARY KEY, vector BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms USING fts5(terms, tokenize='unicode61 remove_diacritics 0');
"""


class IndexMissing(Exception):
    """No committed index in this directory."""


class IndexDamaged(Exception):
    """The committed generation's vectors cannot be read; a sync rebuilds them from the cache."""


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    note: str
    title: str
    headings: tuple[str, ...]
    line: int
    text: str
    score: float  # what the hits were ranked by
    dense: float | None = None  # cosine to the query, where the dense ranker saw this chunk
    practice: bool = False  # inside a practice-question block (stem, options, answer, explanation)


class Store:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.db_path = self.dir / DB_NAME
        self._index = None
        self._generation = None

    # -- connections -------------------------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection per use: cheap, and safe across the UI's threads."""
        self.dir.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.executescript(SCHEMA)
            yield con
        finally:
            con.close()

    def exists(self) -> bool:
        if not self.db_path.exists():
            return False
        return self.manifest().get("generation") is not None

    def manifest(self) -> dict:
        with self.connect() as con:
            rows = con.execute("SELECT key, value FROM manifest").fetchall()
        return {key: json.loads(value) for key, value in rows}

    # -- the vector cache (content hash → vector) --------------------------------------------
    def cached_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(set(hashes))
        found: dict[str, np.ndarray] = {}
        with self.connect() as con:
            for start in range(0, len(wanted), 500):
                batch = wanted[start : start + 500]
                marks = ",".join("?" * len(batch))
                for key, blob in con.execute(
                    f"SELECT hash, vector FROM vectors WHERE hash IN ({marks})", batch
                ):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def cache_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        """Committed batch by batch, so an interrupted build resumes where it stopped."""
        with self.connect() as con:
            con.execute("BEGIN")
            con.executemany(
                "INSERT OR REPLACE INTO vectors(hash, vector) VALUES (?, ?)",
                [(key, np.asarray(vec, dtype=np.float32).tobytes()) for key, vec in vectors.items()],
            )
            con.execute("COMMIT")

    # -- FAISS generations -------------------------------------------------------------------
    def faiss_path(self, generation: int) -> Path:
        return self.dir / f"vectors.{generation}.faiss"

    def write_faiss(self, index, generation: int) -> int:
        """Written aside, flushed, then renamed into place: a file is either whole or absent."""
        import faiss

        final = self.faiss_path(generation)
        tmp = final.with_suffix(".faiss.tmp")
        faiss.write_index(index, str(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        return final.stat().st_size

    def vectors_damaged(self, generation: int, size: int | None) -> str | None:
        """A cheap check (no FAISS import, no read) that the committed vectors file is intact."""
        path = self.faiss_path(generation)
        if not path.exists():
            return f"{path.name} is missing: rebuilt from cached vectors"
        if size is not None and path.stat().st_size != size:
            return f"{path.name} is damaged: rebuilt from cached vectors"
        return None

    def read_faiss(self, generation: int):
        import faiss

        path = self.faiss_path(generation)
        if not path.exists():
            raise IndexDamaged(f"{path} is missing")
        try:
            return faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexDamaged(f"{path} cannot be read: {exc}") from exc

    def remove_stale_files(self, keep: int) -> None:
        for path in self.dir.glob("vectors.*.faiss*"):
            if path.name != self.faiss_path(keep).name:
                path.unlink(missing_ok=True)

    # -- reading -----------------------------------------------------------------------------
    def _index_for(self, generation: int):
        if generation != self._generation:
            self._index, self._generation = self.read_faiss(generation), generation
        return self._index

    @contextmanager
    def snapshot(self) -> Iterator["Snapshot"]:
        """A read transaction and the FAISS index of the same generation: never a mix of two."""
        for attempt in range(5):
            with self.connect() as con:
                con.execute("BEGIN")
                row = con.execute("SELECT value FROM manifest WHERE key = 'generation'").fetchone()
                if row is None:
                    raise IndexMissing(str(self.dir))
                try:
                    index = self._index_for(json.loads(row[0]))
                except IndexDamaged:
                    if attempt == 4:
                        raise
                    time.sleep(0.05)  # a writer has just moved on and removed this file
                    continue
                try:
                    yield Snapshot(con, index)
                finally:
                    con.execute("COMMIT")
                return

    def search(self, vector: np.ndarray, k: int = 5, tags: Iterable[str] = ()) -> list[Hit]:
        """Dense search alone: the best chunk of each of the k closest sections."""
        with self.snapshot() as snap:
            allowed = snap.allowed_ids(tags)
            ranked = snap.dense(vector, max(k * 4, 20), allowed)
            return snap.hits(ranked, k, dense=dict(ranked))

    def chunks(self) -> list[Hit]:
        """Every chunk as a hit, note by note in order: what `tutor warm` has the model read."""
        with self.snapshot() as snap:
            ids = [i for (i,) in snap.con.execute("SELECT id FROM chunks ORDER BY path, ordinal")]
            rows = snap.rows(ids)
        return [Hit(chunk_id=i, score=0.0, **rows[i]) for i in ids]

    def questions(self, tags: Iterable[str] = ()) -> list[QuestionRecord]:
        """Every practice question in the indexed notes, optionally only notes with these tags."""
        tags = [t.lstrip("#") for t in tags]
        with self.connect() as con:
            rows = con.execute("SELECT path, title, tags, questions FROM notes ORDER BY path").fetchall()
        records = []
        for path, title, note_tags, questions in rows:
            note_tags = tuple(json.loads(note_tags))
            if tags and not any(t == w or t.startswith(w + "/") for t in note_tags for w in tags):
                continue
            for data in json.loads(questions):
                question = Question.from_json(data)
                records.append(QuestionRecord(question_id(path, question.number), path, title, note_tags, question))
        return records

    def stats(self) -> dict:
        with self.connect() as con:
            notes = con.execute("SELECT COUNT(*) FROM notes").fetchone()[0]
            chunks = con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            skipped = [
                {"path": p, "reason": r} for p, r in con.execute("SELECT path, reason FROM skipped ORDER BY path")
            ]
        return {"notes": notes, "chunks": chunks, "skipped": skipped, **self.manifest()}


class Snapshot:
    """Rankers and rows read from one committed generation."""

    def __init__(self, con: sqlite3.Connection, index):
        self.con, self.index = con, index

    def allowed_ids(self, tags: Iterable[str]) -> list[int] | None:
        """Chunks of notes with a tag or a child tag (`service` finds `service/s3`); None: all."""
        tags = [t.lstrip("#") for t in tags]
        if not tags:
            return None
        clauses = " OR ".join("(t.tag = ? OR t.tag LIKE ? ESCAPE '\\')" for _ in tags)
        args: list[str] = []
        for tag in tags:
            args += [tag, tag.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"]
        query = f"SELECT DISTINCT c.id FROM chunks c JOIN note_tags t ON t.path = c.path WHERE {clauses}"
        return [row[0] for row in self.con.execute(query, args)]

    def dense(self, vector: np.ndarray, n: int, allowed: list[int] | None = None) -> list[tuple[int, float]]:
        import faiss

        if self.index.ntotal == 0 or allowed == []:
            return []
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.array(allowed, dtype=np.int64)))
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        scores, ids = self.index.search(query, min(n, self.index.ntotal), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def lexical(self, text: str, n: int, allowed: list[int] | None = None) -> list[tuple[int, float]]:
        """BM25 over Korean bigrams and whole English words; higher is better."""
        from index.lexical import match_query

        query = match_query(text)
        if query is None or allowed == []:
            return []
        sql = "SELECT rowid, bm25(chunk_terms) FROM chunk_terms WHERE chunk_terms MATCH ?"
        args: list = [query]
        if allowed is not None:
            sql += f" AND rowid IN ({','.join('?' * len(allowed))})"
            args += allowed
        rows = self.con.execute(sql + " ORDER BY bm25(chunk_terms) LIMIT ?", [*args, n])
        return [(rowid, -score) for rowid, score in rows]

    def hits(self, ranked: list[tuple[int, float]], k: int, dense: dict[int, float] | None = None, skip=None,
             per_note: int | None = None, rows: dict[int, dict] | None = None) -> list[Hit]:
        """The best chunk per section: several chunks of one section would crowd out the rest;
        `per_note` caps the sections one note may hold, for the same reason one level up."""
        rows = rows if rows is not None else self.rows([i for i, _ in ranked])
        hits, seen, per = [], set(), Counter()
        for chunk_id, score in ranked:
            row = rows[chunk_id]
            key = (row["note"], row["headings"])
            if key in seen or (skip and skip(row)) or (per_note and per[row["note"]] >= per_note):
                continue
            seen.add(key)
            per[row["note"]] += 1
            hits.append(Hit(chunk_id=chunk_id, score=score, dense=(dense or {}).get(chunk_id), **row))
            if len(hits) == k:
                break
        return hits

    def rows(self, ids: list[int]) -> dict[int, dict]:
        rows: dict[int, dict] = {}
        blocks: dict[str, list[tuple[str, ...]]] = {}  # note -> heading paths of its question blocks
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            cur = self.con.execute(
                "SELECT c.id, c.path, n.title, c.headings, c.line, c.text, n.questions FROM chunks c "
                f"JOIN notes n ON n.path = c.path WHERE c.id IN ({','.join('?' * len(batch))})",
                batch,
            )
            for cid, path, title, headings, line, text, questions in cur:
                if path not in blocks:
                    blocks[path] = [tuple(q["headings"]) for q in json.loads(questions)]
                headings = tuple(json.loads(headings))
                practice = any(headings[: len(h)] == h for h in blocks[path] if h)
                rows[cid] = dict(note=path, title=title, headings=headings, line=line, text=text, practice=practice)
        return rows
