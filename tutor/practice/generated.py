"""Generated practice questions, kept with the content hashes of the note sections they cite.

A generated question is only as true as the notes it rests on. Each item remembers, per cited
section, a hash of that section's indexed chunks; when a note is edited and re-indexed, items
whose sections changed or vanished are stale: they are left out of practice and reported, to
be dropped or regenerated.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

from index.home import index_dir, tutor_home
from index.note import Question, QuestionRecord
from index.store import Store

STORE_NAME = "generated.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS items(
    id TEXT PRIMARY KEY, vault TEXT NOT NULL, created REAL NOT NULL, question TEXT NOT NULL,
    source_question TEXT, citations TEXT NOT NULL, hashes TEXT NOT NULL, origin TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS items_vault ON items(vault);
"""


class NotIndexed(Exception):
    """A cited section is not in the index, so the item could never be checked for staleness."""


@dataclass(frozen=True)
class Citation:
    """A note section: the note's path in the vault and its heading path."""

    note: str
    headings: tuple[str, ...]

    @property
    def heading(self) -> str:
        return " > ".join(self.headings)

    def to_json(self) -> dict:
        return {"note": self.note, "heading": self.heading}


@dataclass(frozen=True)
class GeneratedItem:
    id: str
    vault: str
    question: Question
    source_question: str | None  # the vault question it is a variant of, if any
    citations: tuple[Citation, ...]
    hashes: tuple[str | None, ...]  # per citation, when it was generated
    origin: dict  # what to ask again to regenerate it
    created: float
    problems: tuple[str, ...] = ()  # set by stale(): which cited sections changed or vanished

    def to_json(self) -> dict:
        q = self.question
        return {
            "id": self.id, "stem": q.stem, "options": dict(q.options), "answer": list(q.answer),
            "explanations": dict(q.explanations), "citations": [c.to_json() for c in self.citations],
            "source_question": self.source_question,
        }


def vault_key(vault: Path) -> str:
    return str(Path(vault).expanduser().resolve())


def generated_id(vault: Path, question: Question) -> str:
    """Same content in the same vault, same id: saving a variant twice keeps one copy."""
    content = json.dumps([vault_key(vault), question.stem, question.options, list(question.answer)], ensure_ascii=False)
    return "gen-" + hashlib.sha256(content.encode()).hexdigest()[:10]


def section_hashes(index: Store, citations: Iterable[Citation]) -> list[str | None]:
    """sha256 over the section's chunk hashes in ordinal order; None when the section is gone."""
    citations = list(citations)
    chunks: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    paths = sorted({c.note for c in citations})
    with index.connect() as con:
        for start in range(0, len(paths), 500):
            batch = paths[start : start + 500]
            rows = con.execute(
                f"SELECT path, headings, hash FROM chunks WHERE path IN ({','.join('?' * len(batch))}) "
                "ORDER BY path, ordinal",
                batch,
            )
            for path, headings, chunk_hash in rows:
                chunks.setdefault((path, tuple(json.loads(headings))), []).append(chunk_hash)
    out = []
    for c in citations:
        found = chunks.get((c.note, c.headings))
        out.append(hashlib.sha256("\n".join(found).encode()).hexdigest() if found else None)
    return out


class GeneratedStore:
    """SQLite under $TUTOR_HOME, one table for every vault (items are keyed by vault path)."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else tutor_home() / STORE_NAME

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)
            yield con
        finally:
            con.close()

    def save(
        self, vault: Path, question: Question, citations: Iterable[Citation], source_question: str | None,
        origin: dict, index: Store | None = None,
    ) -> GeneratedItem:
        """Stores the item with the current hashes of the sections it cites, read from the index."""
        citations = tuple(dict.fromkeys(citations))
        index = index or Store(index_dir(vault))
        hashes = section_hashes(index, citations)
        if None in hashes:
            gone = citations[hashes.index(None)]
            raise NotIndexed(f"{gone.note} › {gone.heading} is not indexed - run 'tutor index', then generate again")
        item = GeneratedItem(
            generated_id(vault, question), vault_key(vault), question, source_question, citations,
            tuple(hashes), origin, time.time(),
        )
        with self.connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO items VALUES (?,?,?,?,?,?,?,?)",
                (item.id, item.vault, item.created, json.dumps(question.to_json(), ensure_ascii=False),
                 source_question, json.dumps([[c.note, list(c.headings)] for c in citations], ensure_ascii=False),
                 json.dumps(list(hashes)), json.dumps(origin, ensure_ascii=False)),
            )
        return item

    def items(self, vault: Path) -> list[GeneratedItem]:
        with self.connect() as con:
            rows = con.execute("SELECT * FROM items WHERE vault = ? ORDER BY created, id", [vault_key(vault)])
            rows = rows.fetchall()
        return [_item(row) for row in rows]

    def get(self, item_id: str) -> GeneratedItem | None:
        with self.connect() as con:
            row = con.execute("SELECT * FROM items WHERE id = ?", [item_id]).fetchone()
        return _item(row) if row else None

    def drop(self, item_id: str) -> bool:
        with self.connect() as con:
            return con.execute("DELETE FROM items WHERE id = ?", [item_id]).rowcount > 0

    def stale(self, vault: Path, index: Store | None = None) -> list[GeneratedItem]:
        """Items whose cited sections changed or vanished since they were generated."""
        index = index or Store(index_dir(vault))
        items = self.items(vault)
        if not items or not index.exists():
            return []
        current = section_hashes(index, [c for item in items for c in item.citations])
        out, at = [], 0
        for item in items:
            now, at = current[at : at + len(item.citations)], at + len(item.citations)
            problems = tuple(
                f"{c.note} › {c.heading} {'was removed' if new is None else 'changed'}"
                for c, old, new in zip(item.citations, item.hashes, now) if old != new
            )
            if problems:
                out.append(replace(item, problems=problems))
        return out

    def records(self, vault: Path, tags: Iterable[str] = ()) -> list[QuestionRecord]:
        """Fresh items as quiz questions: stale ones are never practised. Needs the vault's index."""
        index = Store(index_dir(vault))
        if not index.exists():
            return []
        stale = {item.id for item in self.stale(vault, index)}
        items = [item for item in self.items(vault) if item.id not in stale]
        notes = _note_info(index, {c.note for item in items for c in item.citations})
        wanted = [t.lstrip("#") for t in tags]
        records = []
        for item in items:
            primary = item.citations[0].note
            item_tags = tuple(dict.fromkeys(t for c in item.citations for t in notes.get(c.note, ("", ()))[1]))
            if wanted and not any(t == w or t.startswith(w + "/") for t in item_tags for w in wanted):
                continue
            title = notes.get(primary, (primary, ()))[0]
            records.append(QuestionRecord(item.id, primary, title, item_tags, item.question))
        return records


def stale(vault: Path, store: Store) -> list[GeneratedItem]:
    """For `tutor index`: the vault's generated items that the sync just made stale."""
    return GeneratedStore().stale(vault, store)


def _note_info(index: Store, paths: set[str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    paths_list = sorted(paths)
    out = {}
    with index.connect() as con:
        for start in range(0, len(paths_list), 500):
            batch = paths_list[start : start + 500]
            for path, title, tags in con.execute(
                f"SELECT path, title, tags FROM notes WHERE path IN ({','.join('?' * len(batch))})", batch
            ):
                out[path] = (title, tuple(json.loads(tags)))
    return out


def _item(row: tuple) -> GeneratedItem:
    item_id, vault, created, question, source_question, citations, hashes, origin = row
    return GeneratedItem(
        item_id, vault, Question.from_json(json.loads(question)), source_question,
        tuple(Citation(note, tuple(headings)) for note, headings in json.loads(citations)),
        tuple(json.loads(hashes)), json.loads(origin), created,
    )
