"""The parsed form of one markdown note: what chunking, search and practice read."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Section:
    """A run of text under one heading; `headings` is the path from the top heading down."""

    headings: tuple[str, ...]
    text: str  # plain text: Obsidian syntax rendered, heading line itself excluded
    line: int  # 1-based line of the file where the section's heading (or text) starts


@dataclass(frozen=True)
class Question:
    """A multiple-choice practice question found in a note."""

    stem: str
    options: dict[str, str]  # letter -> option text, in the note's order
    answer: tuple[str, ...]  # correct letters, sorted; several for "Select 2"
    explanations: dict[str, str]  # letter -> why it is right/wrong, where the note says
    explanation: str  # the whole explanation block, plain text ("" if none)
    headings: tuple[str, ...]  # heading path of the section holding the question
    number: int  # 0-based position among the note's questions: part of a stable id

    def to_json(self) -> dict:
        return {**asdict(self), "answer": list(self.answer), "headings": list(self.headings)}

    @classmethod
    def from_json(cls, data: dict) -> "Question":
        return cls(**{**data, "answer": tuple(data["answer"]), "headings": tuple(data["headings"])})


def question_id(note_path: str, number: int) -> str:
    """Short enough to type (`tutor generate distractors --question athena-serverless-query#1`)."""
    stem = note_path[: -len(".md")] if note_path.endswith(".md") else note_path
    return f"{stem}#{number + 1}"


@dataclass(frozen=True)
class QuestionRecord:
    """A vault question with where it lives."""

    id: str
    note: str
    title: str
    tags: tuple[str, ...]
    question: Question


@dataclass
class Note:
    path: str  # posix path relative to the vault root
    title: str
    tags: tuple[str, ...]
    aliases: tuple[str, ...]
    created: str | None
    modified: str | None
    sections: list[Section] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # indexed, but degraded: why


class NoteSkipped(Exception):
    """A file that cannot be indexed at all; the message is the reason shown to the user."""
