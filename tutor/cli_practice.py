"""`tutor quiz` and `tutor export`: thin terminal layers over tutor.practice."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import click

from tutor.cli import notes_option

tag_option = click.option("--tag", "tags", multiple=True, help="Only notes with this tag (or a child tag), e.g. service/s3.")


def question_source(notes: Path, tags=(), own: bool = True):
    """The vault's own questions (unless `own` is False), then its stored generated ones: one `Quiz` source."""
    from tutor.practice.generated import GeneratedStore
    from tutor.practice.quiz import merged

    sources = []
    if own:
        from index.home import index_dir
        from index.store import Store

        store = Store(index_dir(notes))
        if not store.exists():
            raise click.ClickException(f"No index for {notes} - run 'tutor index --notes {notes}'")
        sources.append(lambda: store.questions(tags))
    generated = GeneratedStore()
    sources.append(lambda: generated.records(notes, tags))
    return merged(*sources)


def _no_questions(notes: Path, tags, generated_only: bool = False) -> click.ClickException:
    where = f"{notes}" + (f" with tag {', '.join(tags)}" if tags else "")
    if generated_only:
        return click.ClickException(
            f"No generated questions for {where} - create some with 'tutor generate distractors --question ID'"
        )
    return click.ClickException(
        f"No practice questions in {where} - add a '## 📝 관련 문제' section to a note "
        f"and run 'tutor index --notes {notes}'"
    )


@click.command()
@notes_option
@tag_option
@click.option("--n", default=10, show_default=True, type=click.IntRange(min=1), help="Questions to ask.")
@click.option("--list", "list_only", is_flag=True, help="List question ids, accuracy and due status; ask nothing.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON on stdout: the --list rows, or a summary after the quiz (questions go to stderr).")
@click.option("--seed", type=int, help="The same question order and option shuffle on every run.")
def quiz(notes: Path, tags: tuple[str, ...], n: int, list_only: bool, as_json: bool, seed: int | None):
    """Practise the notes' questions: due and missed ones first, options shuffled."""
    import random

    from tutor.practice.history import History
    from tutor.practice.quiz import Quiz

    session = Quiz(question_source(notes, tags), notes, History(), n=n, rng=random.Random(seed))
    if not session.records:
        raise _no_questions(notes, tags)
    if list_only:
        _list(session.records.values(), session.history, notes, as_json)
        return
    _run(session, err=as_json)
    if as_json:
        click.echo(json.dumps(_summary(session), ensure_ascii=False))


def _run(session, err: bool) -> None:
    """Ask until done, 'q', end of input or Ctrl-C; a typo is re-asked, never graded."""
    from tutor.practice.quiz import InvalidAnswer, parse_letters

    while (presented := session.next()) is not None:
        click.echo(f"\n[{len(session.asked)}/{session.total}] {presented.id} · {presented.record.title}", err=err)
        click.echo(presented.stem + "\n", err=err)
        for letter, text in presented.options:
            click.echo(f"  {letter}) {text}", err=err)

        def letters(text: str, presented=presented):
            if text.strip().lower() == "q":
                return None
            try:
                return parse_letters(text, presented)
            except InvalidAnswer as exc:
                raise click.UsageError(str(exc)) from exc

        how = f"Select {presented.select} / {presented.select}개 선택" if presented.select > 1 else "one letter"
        started = time.monotonic()
        try:
            chosen = click.prompt(f"Answer ({how}; q to stop)", value_proc=letters, err=err)
        except click.Abort:
            chosen = None
        if chosen is None:
            break
        _show(session.submit(presented, chosen, time.monotonic() - started), err)
    right = sum(g.correct for g in session.grades)
    if session.grades:
        click.echo(f"\nScore: {right}/{len(session.grades)} ({right / len(session.grades):.0%})", err=err)


def _show(grade, err: bool) -> None:
    if grade.correct:
        click.secho("✓ Correct", fg="green", bold=True, err=err)
    else:
        detail = [f"answer {', '.join(grade.presented.answer)}"]
        detail += [f"missed {', '.join(grade.missed)}"] if grade.missed else []
        detail += [f"wrong {', '.join(grade.wrong)}"] if grade.wrong else []
        click.secho(f"✗ Wrong - {'; '.join(detail)}", fg="red", bold=True, err=err)
    marks = {"correct": "✓ right", "missed": "✓ missed", "wrong": "✗ your choice", "": ""}
    for option in grade.options:
        click.echo(f"  {option.letter}) {option.text}  {marks[option.status]}".rstrip(), err=err)
        if option.explanation:
            click.echo(f"       {option.explanation}", err=err)
    if grade.explanation and not any(o.explanation for o in grade.options):
        click.echo(grade.explanation, err=err)
    click.echo(f"Source: {grade.presented.source}", err=err)


def _summary(session) -> dict:
    results = [
        {"id": g.presented.id, "correct": g.correct, "chosen": list(g.chosen_original),
         "answer": list(g.presented.record.question.answer)}
        for g in session.grades
    ]
    return {"asked": len(results), "correct": sum(r["correct"] for r in results), "results": results}


def _list(records, history, notes: Path, as_json: bool) -> None:
    by_question = history.stats(notes)["by_question"]
    due = history.due(notes)
    now = datetime.now(timezone.utc)
    rows = []
    for record in sorted(records, key=lambda r: r.id):
        seen = by_question.get(record.id, {"attempts": 0, "correct": 0, "accuracy": None})
        when = due.get(record.id)
        rows.append({
            "id": record.id, "title": record.title, "note": record.note,
            "answers": len(record.question.answer),
            "attempts": seen["attempts"], "correct": seen["correct"], "accuracy": seen["accuracy"],
            "due": when.isoformat() if when else None,
            "status": "new" if when is None else "due" if when <= now else "later",
        })
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    width = max((len(row["id"]) for row in rows), default=0)
    for row in rows:
        score = f"{row['correct']}/{row['attempts']} {row['accuracy']:.0%}" if row["attempts"] else "-"
        status = {"new": "new", "due": "due now"}.get(row["status"]) or f"due in {_span(due[row['id']] - now)}"
        answers = f"{row['answers']} answer{'s' * (row['answers'] > 1)}"
        click.echo(f"{row['id']:<{width}}  {answers:<9}  {score:<9}  {status:<12}  {row['title']}")


def _span(delta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return "<1m"


@click.command()
@notes_option
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The file to write.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "anki"]),
              help="markdown (the notes' question format) or anki (.apkg); default: from --out's suffix.")
@click.option("--generated-only", is_flag=True, help="Only generated questions, not the notes' own.")
@tag_option
@click.option("--force", is_flag=True, help="Overwrite --out if it exists, and allow writing inside the vault.")
def export(notes: Path, out: Path, fmt: str | None, generated_only: bool, tags: tuple[str, ...], force: bool):
    """Write practice questions to a markdown file or an Anki deck."""
    from tutor.practice.export import ExportRefused, check_target, write_anki, write_markdown

    fmt = fmt or ("anki" if out.suffix.lower() == ".apkg" else "markdown")
    try:
        check_target(out, notes, force)
    except ExportRefused as exc:
        raise click.ClickException(str(exc)) from exc
    records = sorted(question_source(notes, tags, own=not generated_only)(), key=lambda r: r.id)
    if not records:
        raise _no_questions(notes, tags, generated_only)
    (write_anki if fmt == "anki" else write_markdown)(records, out)
    click.echo(f"Wrote {len(records)} question{'s' * (len(records) != 1)} to {out} ({fmt})")
