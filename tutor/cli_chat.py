"""`tutor ask` and `tutor chat`: grounded answers from the notes in the terminal."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from tutor.cli import notes_option

llm_option = click.option(
    "--llm", "llm_spec", default=None, show_default="$TUTOR_LLM or the bundled model",
    help="'default', 'ollama:MODEL' or 'llamacpp:/path/model.gguf'.")
tag_option = click.option("--tag", "tags", multiple=True,
                          help="Only notes with this tag (or a child tag), e.g. service/s3.")


@click.command()
@click.argument("question")
@notes_option
@llm_option
@tag_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
def ask(question: str, notes: Path, llm_spec: str | None, tags: tuple[str, ...], as_json: bool):
    """Answer QUESTION from the notes, citing the sections used."""
    with _errors():
        engine = _engine(notes, llm_spec)
        engine.use_blocks()  # sections kept before (`tutor warm`, spare time) are copied in
        answer = _turn(engine, question, (), tags, stream=not as_json)
    if as_json:
        click.echo(json.dumps(_to_json(answer), ensure_ascii=False))


@click.command()
@notes_option
@llm_option
@tag_option
def chat(notes: Path, llm_spec: str | None, tags: tuple[str, ...]):
    """A conversation about your notes: follow-ups build on what was said.

    An empty line or /quit ends, /clear starts a new conversation. With $TUTOR_BLOCKS=1 the
    embedded model reads note sections for later answers while you type (see `tutor warm`).
    """
    import threading

    with _errors():
        engine = _engine(notes, llm_spec)
    quit_ = threading.Event()

    def spare_time() -> None:
        """The system prompt first, then note sections, while the user types (an ask stops it)."""
        engine.warm()
        engine.read_spare(quit_.is_set)

    warming = threading.Thread(target=spare_time, daemon=True)
    warming.start()
    history: list[tuple[str, str]] = []
    click.echo("Ask about your notes (empty line or /quit ends, /clear starts over).")
    while True:
        try:
            question = input("\n> ").strip()
        except EOFError:
            break
        if question in ("", "/quit"):
            break
        if question == "/clear":
            history.clear()
            click.echo("(new conversation)")
            continue
        try:
            answer = _turn(engine, question, history, tags, stream=True)
        except _fixable() as exc:  # say it and keep the conversation going
            click.secho(f"\nError: {exc}", fg="red", err=True)
            continue
        history.append((question, answer.text))
        if not warming.is_alive():  # stopped by this question: go on from its sources
            warming = threading.Thread(target=engine.read_spare, args=(quit_.is_set,), daemon=True)
            warming.start()
    quit_.set()
    warming.join()  # never tear the model down in the middle of a llama.cpp call


@click.command()
@notes_option
@llm_option
@click.option("--clear", is_flag=True, help="Delete what was kept for these notes (every model) instead.")
def warm(notes: Path, llm_spec: str | None, clear: bool):
    """Have the model read every note section once, so answers start sooner ($TUTOR_BLOCKS=1).

    The embedded model keeps each section's reading under $TUTOR_HOME/blocks and copies it
    into the prompts that cite the section instead of reading it again (about 28 KB a token
    with the default model; at most $TUTOR_BLOCKS_MB, default 2048). `tutor ui` and `tutor
    chat` do the same in spare time, and drop what was kept of sections since edited or
    deleted. Ctrl-C stops: what was read is kept. Copied sections do not see each other, so
    answers cite their sources less often: hence off by default.
    """
    from tqdm import tqdm

    from tutor.llm_blocks import enabled

    if clear:
        from tutor.llm_blocks import clear as clear_blocks

        count, size = clear_blocks(notes)
        click.echo(f"{count} kept sections deleted ({size / 2**20:.0f} MB freed)")
        return
    if not enabled():
        raise click.ClickException("Kept sections are off: set TUTOR_BLOCKS=1, or tick '⚡ Read notes ahead' "
                                   "in tutor ui, to keep and use them (answers start sooner and cite their "
                                   "sources less often).")
    with _errors():
        engine = _engine(notes, llm_spec)
        if not hasattr(engine.model, "read_block"):
            raise click.ClickException(
                f"Only the embedded llama.cpp model keeps what it read; {llm_spec} reads each prompt anew.")
        hits = engine.retriever.store.chunks()
        engine.warm(follow_ups=False)  # it reads sections, never a conversation
        if engine.model.blocks is None:
            raise click.ClickException(
                f"Nothing can be kept: {engine.blocks_problem or 'this model cannot move what it read to other positions'}."
                " Each answer reads its sources.")
        dropped = engine.prune_blocks()
        with tqdm(total=len(hits), desc="Reading note sections", unit="section", file=sys.stderr,
                  disable=None) as bar:
            try:
                read = engine.read_blocks(hits, progress=lambda n: bar.update(n - bar.n))
            except KeyboardInterrupt:
                read = None
    kept = engine.model.blocks
    state = ("stopped; " if read is None else f"{engine.blocks_problem}; " if engine.blocks_problem
             else "disk budget ($TUTOR_BLOCKS_MB) full; " if kept.full else "")
    if dropped:
        state += f"dropped {dropped} section{'' if dropped == 1 else 's'} since edited or deleted; "
    click.echo(f"{state}{len(kept)} sections kept ({kept.bytes / 2**20:.0f} MB in {kept.folder})")
    if read is None:
        sys.exit(130)  # as an interrupted command does


def _engine(notes: Path, llm_spec: str | None):
    from tutor.chat import ChatEngine, make_model
    from tutor.llm import parse_spec
    from tutor.retrieve import Retriever

    retriever = Retriever(notes)  # first: a missing index is cheaper to report than a model load
    local = parse_spec(llm_spec)[0] == "llamacpp"  # only a local model may need assembling
    model = make_model(llm_spec, **({"progress": _AssemblyBar()} if local else {}))
    return ChatEngine(retriever, model, vault_name=notes.resolve().name)


def _turn(engine, question: str, history, tags, stream: bool):
    """Run one question; when streaming, print tokens as they come, then the sources."""
    answer = None
    for kind, value in engine.ask(question, history=history, tags=tags):
        if kind == "token" and stream:
            click.echo(value, nl=False)
            sys.stdout.flush()
        elif kind == "done":
            answer = value
    if stream:
        click.echo()
        _print_sources(answer)
    return answer


def _print_sources(answer) -> None:
    if not answer.sources:
        return
    cited = {s.n for s in answer.citations}
    click.secho("\nSources:" if answer.grounded else "\nClosest sections:", bold=True)
    for s in answer.sources:
        mark = "*" if s.n in cited else " "
        click.echo(f"{mark}[{s.n}] {s.note} › {s.heading or s.title}")
        click.echo(f"     {s.link}")


def _to_json(answer) -> dict:
    def row(s):
        return {"n": s.n, "note": s.note, "heading": s.heading, "line": s.line, "link": s.link}

    return {"answer": answer.text, "grounded": answer.grounded, "query": answer.query,
            "citations": [row(s) for s in answer.citations],
            "sources": [{**row(s), "score": round(s.score, 4)} for s in answer.sources]}


def _fixable() -> tuple[type[Exception], ...]:
    """The errors whose message tells the user what to do."""
    from index.embedder import EmbedderError
    from tutor.llm import LLMError
    from tutor.retrieve import RetrievalError

    return LLMError, RetrievalError, EmbedderError


@contextmanager
def _errors():
    """Show a fixable error as a message instead of a traceback."""
    try:
        yield
    except _fixable() as exc:
        raise click.ClickException(str(exc)) from exc


class _AssemblyBar:
    """A progress bar on stderr, shown only if the bundled model must be assembled first."""

    def __init__(self):
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="Preparing the language model", unit="B",
                            unit_scale=True, file=sys.stderr, disable=None, mininterval=0.5)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()
