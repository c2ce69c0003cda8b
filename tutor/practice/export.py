"""Questions out of the tutor: markdown in the notes' own question format, or an Anki deck.

The markdown parses back through `index.parse.parse_questions` to the same stem, options,
answer and per-option explanations. Exports never overwrite a file or land inside the vault
unless forced: a markdown file there would be indexed as a note and its questions practised twice.
"""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Callable, Iterable

from index.note import QuestionRecord

# Fixed ids: Anki recognises a re-imported deck and note type and updates them in place.
ANKI_MODEL_ID = 1_718_204_617
ANKI_DECK_ID = 1_718_204_653
ANKI_DECK_NAME = "AWS notes tutor"


class ExportRefused(Exception):
    """The target is unsafe to write without --force; the message says why and what to do."""


def check_target(out: Path, vault: Path, force: bool) -> None:
    if force:
        return
    if Path(out).resolve().is_relative_to(Path(vault).resolve()):
        raise ExportRefused(
            f"{out} is inside the vault {vault}: the tutor writes nothing into your notes unless told to "
            "('tutor index' would read a markdown export there as a note and practise every question twice). "
            "Choose a path outside the vault, or pass --force."
        )
    if Path(out).exists():
        raise ExportRefused(f"{out} already exists: choose another --out, or pass --force to overwrite it.")


def source_line(record: QuestionRecord) -> str:
    return f"{' › '.join([record.note, *record.question.headings])} ({record.id})"


def to_markdown(records: Iterable[QuestionRecord], title: str = "연습 문제") -> str:
    """Each question in a `## 📝 관련 문제` section. The source line comes before `**Question:**`
    and `---` closes each question, so neither is read as part of a question."""
    parts = [f"# {title}", ""]
    for record in records:
        parts += ["## 📝 관련 문제", "", f"> 출처: {source_line(record)}", "", *_question_markdown(record), "---", ""]
    return "\n".join(parts)


def _question_markdown(record: QuestionRecord) -> list[str]:
    q = record.question
    lines = [f"**Question:** {q.stem}", "", "**Options:**", ""]
    lines += [f"- {letter}) {text}" for letter, text in q.options.items()]
    lines += ["", f"**정답: {', '.join(f'{letter}) {q.options[letter]}' for letter in q.answer)}**", ""]
    if q.explanations:
        lines += ["💡 추가 설명:", ""]
        lines += [f"- **{q.options[letter]}** - {q.explanations[letter]}" for letter in q.options if letter in q.explanations]
        lines.append("")
    elif q.explanation:  # prose, not per option: kept as written
        lines += ["💡 추가 설명:", "", q.explanation, ""]
    return lines


def write_markdown(records: list[QuestionRecord], out: Path) -> None:
    _write_via_temp(Path(out), lambda tmp: tmp.write_text(to_markdown(records), encoding="utf-8"))


def write_anki(records: list[QuestionRecord], out: Path) -> None:
    """An .apkg: front = stem and options, back = answer, explanations and source."""
    import genanki

    model = genanki.Model(
        ANKI_MODEL_ID,
        "AWS notes tutor question",
        fields=[{"name": "Front"}, {"name": "Back"}],
        templates=[{"name": "Card", "qfmt": "{{Front}}", "afmt": "{{FrontSide}}<hr id=answer>{{Back}}"}],
    )
    deck = genanki.Deck(ANKI_DECK_ID, ANKI_DECK_NAME)
    for record in records:
        deck.add_note(genanki.Note(
            model=model,
            fields=[_front(record), _back(record)],
            guid=genanki.guid_for(record.id),  # re-importing updates the card instead of duplicating it
            tags=[tag.replace("/", "::") for tag in record.tags],  # Anki's tag hierarchy
        ))
    _write_via_temp(Path(out), lambda tmp: genanki.Package(deck).write_to_file(str(tmp)))


def _html(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def _front(record: QuestionRecord) -> str:
    q = record.question
    select = f"<p><i>Select {len(q.answer)} ({len(q.answer)}개 선택)</i></p>" if len(q.answer) > 1 else ""
    options = "".join(f"<li>{letter}) {_html(text)}</li>" for letter, text in q.options.items())
    return f"<p>{_html(q.stem)}</p>{select}<ul style='list-style:none'>{options}</ul>"


def _back(record: QuestionRecord) -> str:
    q = record.question
    answer = ", ".join(f"{letter}) {_html(q.options[letter])}" for letter in q.answer)
    why = "".join(
        f"<li><b>{_html(q.options[letter])}</b> - {_html(q.explanations[letter])}</li>"
        for letter in q.options if letter in q.explanations
    )
    explained = f"<ul>{why}</ul>" if why else (f"<p>{_html(q.explanation)}</p>" if q.explanation else "")
    return f"<p><b>정답: {answer}</b></p>{explained}<p><small>출처: {_html(source_line(record))}</small></p>"


def _write_via_temp(out: Path, write: Callable[[Path], object]) -> None:
    """Written aside, then renamed: an interrupted export never leaves half a file under the name."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
