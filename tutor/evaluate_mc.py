"""Multiple-choice accuracy: the tutor answers exam questions from retrieved notes, or closed book.

The model sees the stem, the options and (unless closed book) the notes a hybrid search finds for
them; for a vault question its own block is excluded, so the key and explanation are never shown.
Its reply is constrained to `{"answer": [letters]}` with exactly as many letters as the question
asks for; a reply that still does not validate counts as invalid (and wrong), never as a crash.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from string import Template
from typing import Literal, Sequence

import pydantic

from index.note import QuestionRecord
from index.store import Hit
from tutor.evaluate import Progress, own_section

SYSTEM = (  # no variables: the same bytes on every call, so llama.cpp reuses its cached prefix
    "You answer AWS certification multiple-choice questions. Reply with JSON only, in the form "
    '{"answer": ["B"]}: the letters of the options you choose.'
)
WITH_NOTES = Template("""\
Study notes (often in Korean; they may or may not cover this question):
$notes

Question:
$stem

Options:
$options

Choose exactly $count.""")
CLOSED_BOOK = Template("""\
Question:
$stem

Options:
$options

Choose exactly $count.""")
NOTE_BLOCK = Template("[$n] $title › $heading\n$text")


class ExamFileError(Exception):
    """An external question file that cannot be used; the message names the line and the fix."""


@dataclass(frozen=True)
class Item:
    """A question to answer, from the vault or from an external file."""

    id: str
    stem: str
    options: dict[str, str]
    answer: tuple[str, ...]
    exclude: tuple[tuple[str, tuple[str, ...]], ...] = ()  # sections never shown to the model

    @property
    def query(self) -> str:
        """Stem and options: the options name the services (`tutor eval`: hybrid recall@5 0.78
        with them on the starter vault, 0.63 with the stem alone)."""
        return self.stem + "\n" + "\n".join(f"{letter}) {text}" for letter, text in self.options.items())


def vault_items(records: Sequence[QuestionRecord]) -> list[Item]:
    return [
        Item(r.id, r.question.stem, r.question.options, r.question.answer, own_section(r)) for r in records
    ]


_EXAM_FORMAT = (
    'Each line must be one JSON object like {"id": "q1", "question": "...", '
    '"options": {"A": "...", "B": "..."}, "answer": ["B"]}'
)


class _ExamLine(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(str_strip_whitespace=True, coerce_numbers_to_str=True)

    id: str = pydantic.Field(min_length=1)
    question: str = pydantic.Field(min_length=1)
    options: dict[str, str] = pydantic.Field(min_length=2)
    answer: list[str] = pydantic.Field(min_length=1)

    @pydantic.field_validator("options")
    @classmethod
    def _letters(cls, options: dict[str, str]) -> dict[str, str]:
        bad = [key for key in options if len(key) != 1 or not "A" <= key <= "Z"]
        if bad:
            raise ValueError(f"option keys must be capital letters A-Z, not {', '.join(map(repr, bad))}")
        if not all(text.strip() for text in options.values()):
            raise ValueError("every option needs text")
        return options

    @pydantic.model_validator(mode="after")
    def _answer_among_options(self):
        unknown = [letter for letter in self.answer if letter not in self.options]
        if unknown:
            raise ValueError(f"answer {', '.join(unknown)} is not among the options {', '.join(self.options)}")
        if len(set(self.answer)) != len(self.answer):
            raise ValueError("answer repeats a letter")
        if len(self.answer) >= len(self.options):
            raise ValueError("answer names every option: nothing to choose")
        return self


def load_exam(path: Path) -> list[Item]:
    """One JSON object a line: id, question, options {letter: text}, answer [letters]."""
    items, lines_of = [], {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExamFileError(f"Cannot read {path}: {exc}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = _ExamLine.model_validate_json(line)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise ExamFileError(f"{path}, line {number}: {problems}. {_EXAM_FORMAT}") from exc
        if data.id in lines_of:
            raise ExamFileError(
                f"{path}, line {number}: id {data.id!r} is already used on line {lines_of[data.id]}; ids must be unique"
            )
        lines_of[data.id] = number
        items.append(Item(data.id, data.question, data.options, tuple(sorted(data.answer))))
    if not items:
        raise ExamFileError(f"{path} holds no questions. {_EXAM_FORMAT}")
    return items


@dataclass(frozen=True)
class Outcome:
    chosen: tuple[str, ...] | None  # None: the reply was not a valid answer
    correct: bool
    partial: float  # share of the key's letters chosen
    seconds: float


def choice_schema(item: Item) -> type[pydantic.BaseModel]:
    """Exactly as many letters as the key has, each one of the item's options."""
    count = len(item.answer)
    letters = Literal[tuple(item.options)]
    return pydantic.create_model(
        "Choice",
        answer=(list[letters], pydantic.Field(min_length=count, max_length=count, description="chosen letters")),
    )


def prompt(item: Item, hits: Sequence[Hit] | None) -> list:
    """Chat messages for the item; `hits` None means closed book."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from tutor.prompts import render

    count = len(item.answer)
    values = {
        "stem": item.stem,
        "options": "\n".join(f"{letter}) {text}" for letter, text in item.options.items()),
        "count": f"{count} option" + ("s" if count > 1 else ""),
    }
    if hits is None:
        user = render(CLOSED_BOOK, **values)
    else:
        notes = [_note_block(i, hit, hit.text) for i, hit in enumerate(hits, 1)]
        user = render(WITH_NOTES, notes="\n\n".join(notes) or "(no notes found)", **values)
    return [SystemMessage(SYSTEM), HumanMessage(user)]


def _note_block(n: int, hit: Hit, text: str) -> str:
    from tutor.prompts import render

    return render(NOTE_BLOCK, n=n, title=hit.title, heading=" › ".join(hit.headings), text=text)


def answer(model, item: Item, retriever=None, k: int = 5, budget: int | None = None) -> Outcome:
    """Ask the model one question; a reply that does not validate is an invalid answer.
    ``budget``: the hits are cut to that many tokens as the chat cuts its sources."""
    from tutor.chat import fit_texts, token_counter
    from tutor.llm import LLMError, structured

    start = time.perf_counter()
    hits = retriever.search(item.query, k=k, exclude=item.exclude) if retriever else None
    if hits and budget:
        count = token_counter(model)
        fitted = fit_texts(hits, budget, lambda n, hit, text: count(_note_block(n, hit, text)))
        hits = [replace(hit, text=text) for hit, text in fitted]
    try:
        chosen = tuple(sorted(structured(model, choice_schema(item)).invoke(prompt(item, hits)).answer))
    except LLMError as exc:
        if not isinstance(exc.__cause__, pydantic.ValidationError):
            raise  # the backend failed, not the answer: the user must fix it
        chosen = None
    seconds = time.perf_counter() - start
    if chosen is None:
        return Outcome(None, False, 0.0, seconds)
    right = set(chosen) & set(item.answer)
    return Outcome(chosen, set(chosen) == set(item.answer), len(right) / len(item.answer), seconds)


def evaluate_mc(model, items: Sequence[Item], retriever=None, k: int = 5, progress: Progress | None = None,
                budget: int | None = None) -> dict:
    """Accuracy (exact set), partial credit, invalid replies and seconds per question.
    ``budget``: the model reads the sections cut to that many tokens, as the chat's model does;
    None: the k sections whole."""
    outcomes = []
    for done, item in enumerate(items, 1):
        outcomes.append(answer(model, item, retriever, k, budget))
        if progress:
            progress(done, len(items))
    n = len(outcomes)
    return {
        "accuracy": sum(o.correct for o in outcomes) / n if n else None,
        "partial": sum(o.partial for o in outcomes) / n if n else None,
        "invalid": sum(o.chosen is None for o in outcomes),
        "n": n,
        "seconds_per_question": sum(o.seconds for o in outcomes) / n if n else None,
        "budget": budget if retriever else None,
    }
