"""`tutor ui`: serve the browser UI on 127.0.0.1 and say in the terminal what it is preparing."""
from __future__ import annotations

import os
import time
from pathlib import Path

import click

from tutor.cli import notes_option

POLL_SECONDS = 0.5


@click.command()
@notes_option
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True, help="Port on 127.0.0.1.")
@click.option("--llm", "llm_spec", metavar="SPEC",
              help="Answering model: default (built-in), ollama:MODEL or llamacpp:/path/model.gguf "
                   "[default: $TUTOR_LLM or the built-in model]; switchable in the page.")
def ui(notes: Path, port: int, llm_spec: str | None):
    """Chat, practice and manage the index in your browser (local only, nothing leaves the machine)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no outside connection
    from index.embedder import force_offline
    from tutor.llm import LLMError, parse_spec

    force_offline()  # gradio imports huggingface_hub, which reads these once, on import

    notes = notes.expanduser()
    if not notes.is_dir():
        raise click.ClickException(f"Notes folder {notes} does not exist - pass --notes DIR or set TUTOR_NOTES")
    try:
        parse_spec(llm_spec or os.environ.get("TUTOR_LLM") or "default")
    except LLMError as exc:
        raise click.ClickException(str(exc)) from exc
    llm_spec = llm_spec or os.environ.get("TUTOR_LLM") or "default"

    from tutor.workspace import Workspace
    from ui.app import create_app, launch

    workspace = Workspace(notes, llm_spec)
    app = create_app(workspace)
    try:
        url = launch(app, port)
    except OSError as exc:
        raise click.ClickException(f"Port {port} on 127.0.0.1 is in use - is another 'tutor ui' running? "
                                   "Pass another --port.") from exc
    click.echo(f"Tutor running at {url}  (notes: {workspace.vault}; Ctrl-C to stop)")
    workspace.start()
    try:
        _follow(workspace)
    except KeyboardInterrupt:
        click.echo("Stopping.")
    finally:
        workspace.close()
        app.close()


def _follow(workspace) -> None:
    """Print each preparation step once, then keep serving until Ctrl-C."""
    from ui.render import model_name, stage

    said: set[str] = set()

    def say(line: str) -> None:
        if line not in said:
            said.add(line)
            click.echo(line)

    while True:
        status = workspace.status()
        if status.state in ("indexing", "syncing") and status.stage in ("model", "parse", "embed", "write"):
            detail = stage("en", status.stage, status.done, status.total)
            if status.stage == "embed":  # one line per tenth, not per batch
                detail = stage("en", "embed", status.total * int(10 * status.done / max(status.total, 1)) / 10, status.total)
            say(f"  {'Indexing' if not status.indexed else 'Syncing'}: {detail}")
        elif status.state == "ready" and status.seconds is not None:
            say(f"Index ready: {status.notes} notes, {status.chunks} chunks "
                f"({status.changed} changed, {status.seconds:.1f} s)")
        elif status.state == "error":
            say(f"Index problem: {status.error}")
        if status.llm_state == "preparing":
            say(f"  Preparing the built-in model: {int(10 * (status.llm_fraction or 0)) * 10}%")
        elif status.llm_state == "ready":
            say(f"Model ready: {model_name('en', status.llm)}")
        elif status.llm_state == "error":
            say(f"Model problem: {status.llm_error}")
        time.sleep(POLL_SECONDS)
