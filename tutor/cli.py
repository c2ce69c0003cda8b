"""The `tutor` command. Heavy libraries are imported inside commands so --help is instant."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

notes_option = click.option(  # every command that reads a vault takes it the same way
    "--notes",
    "notes",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="TUTOR_NOTES",
    default="notes",
    show_default="$TUTOR_NOTES or ./notes",
    help="The vault: a folder of markdown notes.",
)


# Commands that live in their own modules: name -> "module:function", imported when used.
LAZY_COMMANDS: dict[str, str] = {
    "ask": "tutor.cli_chat:ask",
    "chat": "tutor.cli_chat:chat",
    "warm": "tutor.cli_chat:warm",
    "quiz": "tutor.cli_practice:quiz",
    "export": "tutor.cli_practice:export",
    "eval": "tutor.cli_eval:eval_command",
    "ui": "tutor.cli_ui:ui",
    "generate": "tutor.cli_generate:generate",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS:
            import importlib

            module, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="aws-notes-tutor")
def cli():
    """A local study tutor over your markdown notes.

    Data lives under $TUTOR_HOME (default ~/.local/share/tutor). The embedding model is
    $TUTOR_EMBED_MODEL: the built-in multilingual-e5-small, or any local sentence-transformers
    model directory. The LLM is --llm or $TUTOR_LLM; for the embedded one, $TUTOR_LLM_THREADS
    sets the threads and $TUTOR_LLM_DRAFT_TOKENS the guesses per speculative step (default:
    8 where this CPU checks them cheaply, else none; 0 turns them off).
    $TUTOR_CONTEXT_TOKENS sets how much of the notes an answer reads (default 380 tokens:
    the model reads them before its first word). In `tutor ui` the model reads them while
    you type; $TUTOR_PREREAD=0 turns that off. With $TUTOR_BLOCKS=1 (or '⚡ Read notes ahead'
    ticked in `tutor ui`, kept in $TUTOR_HOME/settings.json) the embedded model keeps
    each note section it read on its own (`tutor warm`, or spare time in `tutor ui` and `tutor
    chat`) under $TUTOR_HOME/blocks, at most $TUTOR_BLOCKS_MB (default 2048), and copies it
    into the prompts that cite it instead of reading them: answers start about 3x sooner on a
    slow CPU, but cite their sources less often.
    """


@cli.command()
def prepare():
    """Prepare the built-in models: embedding model and LLM (otherwise done on first use)."""
    from index.embedder import ensure_default_model
    from tutor.llm import LLMError
    from tutor.llm import ensure_default_model as ensure_default_llm

    path = _with_fraction_bar("Preparing embedding model", ensure_default_model)
    click.echo(f"Embedding model ready at {path}")
    try:
        path = _with_fraction_bar(
            "Assembling the built-in LLM", lambda progress: ensure_default_llm(lambda done, total: progress("", done / total))
        )
    except LLMError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"LLM ready at {path}")


@cli.command()
@notes_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def index(notes: Path, as_json: bool):
    """Index the notes: only new or changed text is embedded."""
    from index.embedder import EmbedderError, get_embedder
    from index.home import index_dir
    from index.store import Store
    from index.sync import SyncError, sync

    store = Store(index_dir(notes))
    bars = _StageBars(quiet=as_json)
    try:
        report = sync(notes, store, get_embedder(), progress=bars)
    except (SyncError, EmbedderError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        bars.close()
    from tutor.practice.generated import stale

    outdated = [{"id": item.id, "problems": list(item.problems)} for item in stale(notes, store)]
    if as_json:
        click.echo(json.dumps({**report.to_json(), "stale": outdated}, ensure_ascii=False))
        return
    if report.rebuilt:
        click.echo(f"Rebuilt: {report.rebuilt}")
    click.echo(
        f"{report.notes} notes, {report.chunks} chunks: {report.embedded} embedded, "
        f"{report.removed} removed, {len(report.changed)} notes changed, "
        f"{len(report.deleted)} deleted in {report.seconds:.2f} s"
    )
    for item in report.skipped:
        click.echo(f"  skipped {item['path']}: {item['reason']}", err=True)
    for item in report.warnings:
        click.echo(f"  warning {item['path']}: {item['warning']}", err=True)
    if outdated:
        click.echo(f"{len(outdated)} generated question(s) cite sections that changed - "
                   "'tutor generate stale --regenerate' or '--drop':")
        for item in outdated:
            click.echo(f"  {item['id']}: {'; '.join(item['problems'])}")


@cli.command()
@click.argument("query")
@notes_option
@click.option("--k", default=5, show_default=True, help="How many sections to show.")
@click.option("--tag", "tags", multiple=True, help="Only notes with this tag (or a child tag), e.g. service/s3.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True,
              help="Rankers: meaning (dense), exact words (lexical), or both fused.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (one per line with '-').")
def search(query: str, notes: Path, k: int, tags: tuple[str, ...], mode: str, as_json: bool):
    """Find the note sections closest to QUERY ('-' reads one query per line from stdin)."""
    from index.embedder import EmbedderError
    from tutor.retrieve import RetrievalError, Retriever

    try:
        retriever = Retriever(notes)
        queries = (line.strip() for line in sys.stdin) if query == "-" else iter([query])
        for text in queries:
            if text:
                _print_hits(retriever.search(text, k=k, tags=tags, mode=mode), as_json)
    except (RetrievalError, EmbedderError) as exc:
        raise click.ClickException(str(exc)) from exc


def _print_hits(hits, as_json: bool) -> None:
    if as_json:
        rows = [
            {"note": h.note, "heading": " > ".join(h.headings), "score": round(h.score, 4),
             "relevance": round(h.dense, 4), "text": h.text, "title": h.title, "line": h.line}
            for h in hits
        ]
        click.echo(json.dumps(rows, ensure_ascii=False), nl=True)
        sys.stdout.flush()
        return
    if not hits:
        click.echo("No matching sections.")
    for rank, hit in enumerate(hits, 1):
        click.secho(f"{rank}. {hit.dense:.2f}  {hit.note}", bold=True, nl=False)  # cosine: readable in every mode
        click.echo(f"  › {' › '.join(hit.headings)}" if hit.headings else "")
        snippet = " ".join(hit.text.split())
        click.echo(f"   {snippet[:240]}{'…' if len(snippet) > 240 else ''}")


class _StageBars:
    """One progress bar per sync stage, on stderr, only while there is real work."""

    def __init__(self, quiet: bool):
        self.quiet, self.bars = quiet, {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet or total < 2:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            labels = {"parse": "Reading notes", "embed": "Embedding chunks"}
            bar = self.bars[stage] = tqdm(
                total=total, desc=labels.get(stage, stage), file=sys.stderr, disable=None, mininterval=0.5
            )
        bar.total = total
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _with_fraction_bar(label: str, work):
    from tqdm import tqdm

    with tqdm(total=100, desc=label, unit="%", file=sys.stderr, disable=None, mininterval=0.5) as bar:

        def progress(message: str, fraction: float) -> None:
            bar.set_postfix_str(message[:40], refresh=False)
            bar.update(round(fraction * 100) - bar.n)

        return work(progress=progress)
