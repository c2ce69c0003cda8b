"""`tutor generate`: new distractors and new questions from the notes, checked and kept."""
from __future__ import annotations

import json
from pathlib import Path

import click

from tutor.cli import notes_option

llm_option = click.option("--llm", "llm_spec", envvar="TUTOR_LLM", default=None,
                          help="'default' (bundled), 'ollama:MODEL' or 'llamacpp:/path/model.gguf'.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
save_option = click.option("--save/--no-save", default=True, show_default=True,
                           help="Keep the result for practice (tutor quiz) and export.")
n_option = click.option("--n", default=3, show_default=True, type=click.IntRange(1, 6), help="New wrong options.")


@click.group()
def generate():
    """New practice options from the notes: every option grounded in a note section and checked."""


@generate.command()
@click.option("--question", "question_id", required=True, help="The question's id, e.g. athena-serverless-query#1.")
@n_option
@json_option
@notes_option
@llm_option
@save_option
def distractors(question_id: str, n: int, as_json: bool, notes: Path, llm_spec: str | None, save: bool):
    """A variant of a question: its correct options kept, N new wrong ones."""
    with _errors():
        generator = _generator(notes, llm_spec, as_json)
        result = generator.distractors(generator.find_question(question_id), n, _progress(as_json))
        _show(result, generator, save, as_json)


@generate.command()
@click.option("--note", required=True, help="The note: its path in the vault, with or without .md.")
@click.option("--heading", default=None, help="The section (its heading); default: a random prose section.")
@n_option
@json_option
@notes_option
@llm_option
@save_option
def question(note: str, heading: str | None, n: int, as_json: bool, notes: Path, llm_spec: str | None, save: bool):
    """A new question answerable from one section of a note."""
    with _errors():
        generator = _generator(notes, llm_spec, as_json)
        _show(generator.question(note, heading, n, _progress(as_json)), generator, save, as_json)


@generate.command()
@click.option("--drop", is_flag=True, help="Delete the stale items.")
@click.option("--regenerate", is_flag=True, help="Generate each stale item again from the notes as they are now.")
@json_option
@notes_option
@llm_option
def stale(drop: bool, regenerate: bool, as_json: bool, notes: Path, llm_spec: str | None):
    """Generated items whose cited note sections changed or vanished since they were made."""
    from tutor.practice.generated import GeneratedStore

    if drop and regenerate:
        raise click.UsageError("choose --drop or --regenerate, not both")
    store = GeneratedStore()
    items = store.stale(notes)
    report = []
    with _errors():
        generator = _generator(notes, llm_spec, as_json) if regenerate and items else None
        for item in items:
            entry = {"id": item.id, "problems": list(item.problems), "source_question": item.source_question}
            if drop:
                entry["dropped"] = store.drop(item.id)
            elif generator:
                if not as_json:
                    click.echo(f"Regenerating {item.id}…", err=True)  # its progress lines follow
                entry.update(_regenerated(generator, store, item, _progress(as_json)))
            report.append(entry)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    if not report:
        click.echo("No stale generated items.")
    for entry in report:
        click.echo(f"{entry['id']}: {'; '.join(entry['problems'])}")
        if "dropped" in entry:
            click.echo("  dropped")
        elif "new_id" in entry:
            click.echo(f"  regenerated as {entry['new_id']} (missing {entry['missing']})")
        elif "error" in entry:
            click.echo(f"  not regenerated: {entry['error']}")
    if report and not (drop or regenerate):
        click.echo("Drop them with --drop, or make them again with --regenerate.")


def _regenerated(generator, store, item, progress) -> dict:
    """The fresh version replaces the stale one, even with fewer wrong options (said as `missing`):
    a stale item may now be wrong. One with no wrong option at all is no question: the old stays."""
    from tutor.practice.generate import GenerationError

    try:
        result = generator.regenerate(item, progress)
    except GenerationError as exc:
        return {"error": str(exc)}
    if len(result.question.options) == len(result.question.answer):
        return {"error": "no wrong option passed the checks; the stale item was kept (excluded from practice)"}
    store.drop(item.id)
    _save(result, generator)
    return {"new_id": result.id, "missing": result.missing}


def _generator(notes: Path, llm_spec: str | None, quiet: bool):
    from tutor.practice.generate import Generator, chat_model

    if not quiet:
        click.echo("Loading the models…", err=True)
    return Generator(notes, chat_model(llm_spec))


def _progress(as_json: bool):
    """Each model call and checked candidate on stderr as it happens (a variant takes half a minute);
    stdout stays the result, and --json output stays quiet for scripts."""
    if as_json:
        return None

    def show(event) -> None:
        if event.kind == "call":
            click.echo(f"  call {event.call}/{event.most} …", err=True)
        elif event.kind == "accepted":
            click.echo(f"  ✓ {event.text}", err=True)
        elif event.kind == "rejected":
            click.echo(f"  ✗ {event.text} — {event.reason}" if event.text else f"  ✗ {event.reason}", err=True)

    return show


def _save(result, generator) -> None:
    from tutor.practice.generated import GeneratedStore

    GeneratedStore().save(generator.vault, result.question, result.citations, result.source_question,
                          result.origin, generator.index)


def _show(result, generator, save: bool, as_json: bool) -> None:
    if save:
        _save(result, generator)
    if as_json:
        click.echo(json.dumps({**result.to_json(), "saved": save}, ensure_ascii=False))
        return
    q = result.question
    click.secho(f"{result.id}" + (" (saved)" if save else ""), bold=True)
    click.echo(q.stem + "\n")
    for letter, text in q.options.items():
        click.echo(f"  {letter}) {text}")
    click.echo(f"\n정답: {', '.join(q.answer)}\n")
    for letter, why in q.explanations.items():
        click.echo(f"  {letter}) {why}")
    click.echo("\nSources: " + "; ".join(f"{c.note} › {c.heading}" for c in result.citations))
    if result.missing:
        click.secho(f"Only {len(q.options) - len(q.answer)} new wrong option(s): {result.missing} could not be "
                    "generated and were not padded.", fg="yellow", err=True)
    click.echo(f"({result.calls} model call(s), {result.seconds:.1f} s)", err=True)


class _errors:
    """Problems the user can fix become one-line errors, not tracebacks."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        from index.embedder import EmbedderError
        from tutor.llm import LLMError
        from tutor.practice.generate import GenerationError
        from tutor.practice.generated import NotIndexed
        from tutor.retrieve import RetrievalError

        if isinstance(exc, (GenerationError, NotIndexed, LLMError, RetrievalError, EmbedderError)):
            raise click.ClickException(str(exc)) from exc
        return False
