"""Practising questions, free of any interface: the terminal and the web UI both drive these.

`present` shuffles a question's options and relabels them A, B, C…; `grade` maps the chosen
letters back through that shuffle, so every verdict and explanation is the note's own.
`Quiz` is one session: it picks questions by the schedule in `history` and records answers.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from index.note import QuestionRecord
from tutor.practice.history import Attempt, History

Source = Callable[[], list[QuestionRecord]]
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class InvalidAnswer(ValueError):
    """The typed answer is not a usable set of letters; the message says what to type."""


@dataclass(frozen=True)
class Presented:
    """A question as shown: `order[0]` is the note's letter of the option shown as A."""

    record: QuestionRecord
    order: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def stem(self) -> str:
        return self.record.question.stem

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(LETTERS[: len(self.order)])

    @property
    def options(self) -> list[tuple[str, str]]:
        """(shown letter, option text) in the order shown."""
        return [(letter, self.record.question.options[o]) for letter, o in zip(self.letters, self.order)]

    @property
    def select(self) -> int:
        """How many letters make an answer ("Select 2")."""
        return len(self.record.question.answer)

    @property
    def answer(self) -> tuple[str, ...]:
        return tuple(sorted(self.shown(o) for o in self.record.question.answer))

    @property
    def source(self) -> str:
        return " › ".join([self.record.note, *self.record.question.headings])

    def original(self, shown: str) -> str:
        return self.order[self.letters.index(shown)]

    def shown(self, original: str) -> str:
        return self.letters[self.order.index(original)]


def present(record: QuestionRecord, rng: random.Random) -> Presented:
    order = list(record.question.options)
    rng.shuffle(order)
    return Presented(record, tuple(order))


_SEPARATORS = re.compile(r"[\s,;/]+")


def parse_letters(text: str, presented: Presented) -> tuple[str, ...]:
    """'A C', 'a,c' and 'AC' all mean A and C; exactly `presented.select` letters are wanted."""
    valid = presented.letters
    letters = [char for token in _SEPARATORS.split(text.strip().upper()) for char in token]
    unknown = [char for char in letters if char not in valid]
    choices = f"{valid[0]}-{valid[-1]}"
    if unknown:
        raise InvalidAnswer(f"'{unknown[0]}' is not an option: type letters {choices}, e.g. '{_example(presented)}'")
    chosen = tuple(sorted(set(letters)))
    if len(chosen) != presented.select:
        want = f"{presented.select} letters ({presented.select}개 선택)" if presented.select > 1 else "one letter"
        raise InvalidAnswer(f"Choose {want} from {choices}, e.g. '{_example(presented)}'")
    return chosen


def _example(presented: Presented) -> str:
    return " ".join(presented.letters[: presented.select]) if presented.select > 1 else presented.letters[0]


@dataclass(frozen=True)
class OptionVerdict:
    letter: str  # as shown
    original: str  # the note's letter
    text: str
    correct: bool  # part of the answer
    chosen: bool
    explanation: str  # the note's explanation of this option; "" where it gives none

    @property
    def status(self) -> str:
        """'correct' (chosen, right), 'missed', 'wrong' (chosen, not right), or ''."""
        if self.correct:
            return "correct" if self.chosen else "missed"
        return "wrong" if self.chosen else ""


@dataclass(frozen=True)
class Grade:
    presented: Presented
    chosen: tuple[str, ...]  # shown letters
    options: tuple[OptionVerdict, ...]  # in the order shown

    @property
    def correct(self) -> bool:
        """All or nothing: every right option and no other."""
        return not self.missed and not self.wrong

    @property
    def missed(self) -> tuple[str, ...]:
        return tuple(o.letter for o in self.options if o.status == "missed")

    @property
    def wrong(self) -> tuple[str, ...]:
        return tuple(o.letter for o in self.options if o.status == "wrong")

    @property
    def chosen_original(self) -> tuple[str, ...]:
        return tuple(sorted(self.presented.original(letter) for letter in self.chosen))

    @property
    def explanation(self) -> str:
        """The note's whole explanation block, for notes that explain in prose, not per option."""
        return self.presented.record.question.explanation


def grade(presented: Presented, chosen: Iterable[str]) -> Grade:
    chosen = tuple(sorted({letter.upper() for letter in chosen}))
    if unknown := set(chosen) - set(presented.letters):
        raise InvalidAnswer(f"not an option: {', '.join(sorted(unknown))}")
    question = presented.record.question
    verdicts = tuple(
        OptionVerdict(letter, original, text, original in question.answer, letter in chosen,
                      question.explanations.get(original, ""))
        for (letter, text), original in zip(presented.options, presented.order)
    )
    return Grade(presented, chosen, verdicts)


def merged(*sources: Source) -> Source:
    """One source from several (the notes' questions, generated ones); the first of an id wins."""

    def records() -> list[QuestionRecord]:
        found: dict[str, QuestionRecord] = {}
        for source in sources:
            for record in source():
                found.setdefault(record.id, record)
        return list(found.values())

    return records


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Quiz:
    """A practice session of at most `n` questions, none twice, in the order `History.queue` gives.

    Questions are read from `source` once, on the first `next()`. New questions come in random
    order (from `rng`), so practice does not always start with the same note.
    """

    def __init__(self, source: Source, vault: Path, history: History | None = None, n: int | None = 10,
                 rng: random.Random | None = None, clock: Callable[[], datetime] = _utc_now):
        self.source, self.vault, self.n = source, Path(vault), n
        self.history = history or History()
        self.rng = rng or random.Random()
        self.clock = clock
        self.asked: list[str] = []
        self.grades: list[Grade] = []
        self._records: dict[str, QuestionRecord] | None = None

    @property
    def records(self) -> dict[str, QuestionRecord]:
        if self._records is None:
            records = list(self.source())
            self.rng.shuffle(records)
            self._records = {r.id: r for r in records}
        return self._records

    @property
    def total(self) -> int:
        """How many questions this session will ask, at most."""
        return len(self.records) if self.n is None else min(self.n, len(self.records))

    def next(self) -> Presented | None:
        """The next question, shuffled; None once `n` were asked or none are left."""
        if len(self.asked) >= self.total:
            return None
        remaining = [i for i in self.records if i not in self.asked]
        queue = self.history.queue(self.vault, remaining, self.clock())
        if not queue:
            return None
        self.asked.append(queue[0])
        return present(self.records[queue[0]], self.rng)

    def submit(self, presented: Presented, chosen: Iterable[str], seconds: float) -> Grade:
        """Grade and remember the answer: a wrong one brings the question back sooner."""
        result = grade(presented, chosen)
        record = presented.record
        self.history.record(self.vault, Attempt(record.id, record.tags, result.chosen_original,
                                                record.question.answer, seconds, self.clock()))
        self.grades.append(result)
        return result
