"""Practice results that outlive the session: every attempt, and a review schedule per question.

One SQLite file, `$TUTOR_HOME/practice.sqlite`, serves every vault; rows are keyed by the
vault's resolved path. Letters are always the note's own, never the shuffled ones shown.

The schedule is FSRS (the `fsrs` package) with fuzzing off, so intervals are predictable.
A right answer rates the question's card Good, a wrong one Again:

- new, answered right: back in 10 minutes, then (right again) in 2 days, then ~11 days, growing;
- new, answered wrong: back in 1 minute, then 10 minutes, then 1 day;
- learned, answered wrong: relearning, back in 10 minutes, then at a shorter interval than before.

`queue` turns that into an order: due questions first (most overdue first), then questions
never practised, then the rest (soonest due first). History of a question that has left the
vault is kept; `queue` only orders the ids it is given, so such a question is never asked.
"""
from __future__ import annotations

import json
import sqlite3
import zlib
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from index.home import tutor_home

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts(
    id INTEGER PRIMARY KEY, vault TEXT NOT NULL, question TEXT NOT NULL, at TEXT NOT NULL,
    chosen TEXT NOT NULL, answer TEXT NOT NULL, correct INTEGER NOT NULL, seconds REAL,
    tags TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_question ON attempts(vault, question);
CREATE TABLE IF NOT EXISTS cards(
    vault TEXT NOT NULL, question TEXT NOT NULL, card TEXT NOT NULL, PRIMARY KEY(vault, question));
"""


@dataclass(frozen=True)
class Attempt:
    """One answer to one question, in the note's letters."""

    question: str  # question id, e.g. athena-serverless-query#1
    tags: tuple[str, ...]  # the note's tags when answered: stats by service survive tag edits
    chosen: tuple[str, ...]
    answer: tuple[str, ...]
    seconds: float
    at: datetime  # timezone-aware

    @property
    def correct(self) -> bool:
        return set(self.chosen) == set(self.answer)


def vault_key(vault: Path) -> str:
    return str(Path(vault).expanduser().resolve())


class History:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else tutor_home() / "practice.sqlite"
        self._scheduler = None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """Short-lived connections: safe across the UI's threads."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.executescript(SCHEMA)
            yield con
        finally:
            con.close()

    def _fsrs(self):
        """fsrs is imported on first use, keeping `tutor --help` instant."""
        if self._scheduler is None:
            import fsrs

            self._scheduler = fsrs.Scheduler(enable_fuzzing=False)
        return self._scheduler

    def record(self, vault: Path, attempt: Attempt) -> datetime:
        """Store the attempt, reschedule the question; returns when it is due next."""
        import fsrs

        key, at = vault_key(vault), attempt.at.astimezone(timezone.utc)
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute(
                "SELECT card FROM cards WHERE vault = ? AND question = ?", (key, attempt.question)
            ).fetchone()
            card = fsrs.Card.from_json(row[0]) if row else fsrs.Card(card_id=zlib.crc32(attempt.question.encode()))
            rating = fsrs.Rating.Good if attempt.correct else fsrs.Rating.Again
            card, _ = self._fsrs().review_card(card, rating, at)
            con.execute(
                "INSERT INTO attempts(vault, question, at, chosen, answer, correct, seconds, tags)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, attempt.question, at.isoformat(), json.dumps(sorted(attempt.chosen)),
                 json.dumps(sorted(attempt.answer)), int(attempt.correct), attempt.seconds,
                 json.dumps(list(attempt.tags), ensure_ascii=False)),
            )
            con.execute(
                "INSERT OR REPLACE INTO cards(vault, question, card) VALUES (?, ?, ?)",
                (key, attempt.question, card.to_json()),
            )
            con.execute("COMMIT")
        return card.due

    def due(self, vault: Path) -> dict[str, datetime]:
        """question id -> when it is due; questions never practised are absent."""
        with self._connect() as con:
            rows = con.execute("SELECT question, card FROM cards WHERE vault = ?", (vault_key(vault),)).fetchall()
        return {question: datetime.fromisoformat(json.loads(card)["due"]) for question, card in rows}

    def queue(self, vault: Path, ids: Iterable[str], now: datetime) -> list[str]:
        """`ids` in practice order (see the module docstring); new ones keep the order given."""
        due = self.due(vault)
        ids = list(dict.fromkeys(ids))
        overdue = sorted((i for i in ids if i in due and due[i] <= now), key=due.__getitem__)
        later = sorted((i for i in ids if i in due and due[i] > now), key=due.__getitem__)
        return [*overdue, *(i for i in ids if i not in due), *later]

    def attempts(self, vault: Path) -> list[Attempt]:
        with self._connect() as con:
            rows = con.execute(
                "SELECT question, tags, chosen, answer, seconds, at FROM attempts WHERE vault = ? ORDER BY id",
                (vault_key(vault),),
            ).fetchall()
        return [
            Attempt(q, tuple(json.loads(tags)), tuple(json.loads(chosen)), tuple(json.loads(answer)),
                    seconds, datetime.fromisoformat(at))
            for q, tags, chosen, answer, seconds, at in rows
        ]

    def stats(self, vault: Path) -> dict:
        """Accuracy overall, by tag and by question (with how often each wrong option was chosen)."""
        attempts, due = self.attempts(vault), self.due(vault)
        by_tag: dict[str, list[Attempt]] = defaultdict(list)
        by_question: dict[str, list[Attempt]] = defaultdict(list)
        for attempt in attempts:
            by_question[attempt.question].append(attempt)
            for tag in attempt.tags:
                by_tag[tag].append(attempt)
        questions = {}
        for question, answers in by_question.items():
            wrong = Counter(letter for a in answers for letter in a.chosen if letter not in a.answer)
            questions[question] = {
                **_accuracy(answers),
                "wrong_choices": dict(sorted(wrong.items())),
                "last": answers[-1].at.isoformat(),
                "due": due[question].isoformat() if question in due else None,
            }
        return {
            "total": {**_accuracy(attempts), "questions": len(by_question)},
            "by_tag": {tag: _accuracy(answers) for tag, answers in sorted(by_tag.items())},
            "by_question": dict(sorted(questions.items())),
        }


def _accuracy(attempts: list[Attempt]) -> dict:
    correct = sum(a.correct for a in attempts)
    return {"attempts": len(attempts), "correct": correct, "accuracy": correct / len(attempts) if attempts else None}
