"""Everything the browser UI does with one vault, behind one object.

The UI calls only this facade, so its tests can hand it a fake with the same methods. It owns
the index store, the retriever and chat engine (the LLM is loaded on first use and can be
swapped), practice history, generated questions, export, and the sync that keeps the index in
step with the vault: once at start, on demand, and a moment after a note is saved (watcher).
Searching during a sync is safe: readers see the last committed generation until the new
one is committed.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from index.home import index_dir, tutor_home
from index.store import Store

if TYPE_CHECKING:  # pragma: no cover
    from index.note import QuestionRecord
    from index.sync import SyncReport
    from tutor.practice.generate import Generated
    from tutor.practice.generate import Progress as GenerationProgress  # not the indexing Progress below
    from tutor.practice.generated import GeneratedItem
    from tutor.practice.quiz import Grade, Presented, Quiz

log = logging.getLogger("tutor.workspace")
Progress = Callable[[str, float, float], None]  # (stage, done, total)
RECENT = 10  # answers per service shown as the recent trend


class NotReady(Exception):
    """The first index is still being built; the message says what is happening."""


class WorkspaceError(Exception):
    """Something the user asked for cannot be done; the message says what to do instead."""


@dataclass(frozen=True)
class Status:
    state: str  # starting | indexing (no index yet) | syncing | ready | error
    stage: str | None = None  # model | parse | embed | write, while working
    done: float = 0
    total: float = 0
    notes: int = 0
    chunks: int = 0
    embedding_model: str | None = None
    last_sync: float | None = None  # epoch seconds of the last committed sync (any process)
    seconds: float | None = None  # how long this session's last sync took
    changed: int | None = None  # notes changed or deleted by it
    synced_at: float | None = None  # when it finished
    skipped: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    error: str | None = None
    llm: str = "default"
    llm_state: str = "idle"  # idle | preparing | loading | ready | error
    llm_fraction: float | None = None
    llm_error: str | None = None
    stale: int = 0  # generated questions whose sections changed
    indexed: bool = False  # a committed index exists: search and practice work, even during a sync
    kept: int | None = None  # note sections the model keeps read ($TUTOR_BLOCKS=1), None when it keeps none


class Workspace:
    def __init__(self, vault: Path, llm_spec: str | None = None, *, embedder=None, history=None,
                 generated=None, debounce: float = 1.0):
        from tutor.practice.generated import GeneratedStore
        from tutor.practice.history import History

        self.vault = Path(vault).expanduser().resolve()
        self.store = Store(index_dir(self.vault))
        self.history = history or History()
        self.generated = generated or GeneratedStore()
        self.llm_spec = llm_spec or "default"
        self.debounce = debounce
        self._embedder = embedder
        self._lock = threading.RLock()  # guards the fields below
        self._sync_lock = threading.Lock()  # one sync at a time in this process (a file lock across them)
        self._llm_lock = threading.Lock()
        self._work: dict = {"state": "starting"}
        self._llm: dict = {"llm_state": "idle"}
        self._stale = 0
        self._retriever = None
        self._chat_model = None
        self._engine = None
        self._prereader = None
        self._watcher = None
        self._wake = threading.Event()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def embedder(self):
        with self._lock:
            if self._embedder is None:
                from index.embedder import get_embedder

                self._embedder = get_embedder()
            return self._embedder

    def start(self, warm_llm: bool = True) -> threading.Thread:
        """In the background: prepare the embedding model, catch the index up with the vault,
        watch for saves, then load both models so the first question waits for neither."""
        thread = threading.Thread(target=self._prepare, args=(warm_llm,), name="tutor-prepare", daemon=True)
        thread.start()
        return thread

    def _prepare(self, warm_llm: bool) -> None:
        from index.embedder import DEFAULT_MODEL, EmbedderError, ensure_default_model

        try:
            if getattr(self.embedder, "spec", None) == DEFAULT_MODEL:
                self._set(state="indexing" if not self.store.exists() else "syncing")
                ensure_default_model(progress=lambda _message, fraction: self._set(stage="model", done=fraction, total=1))
            self.sync()
        except Exception:
            return  # sync() recorded it for the status; nothing else can work without an index
        self._start_watching()
        try:  # a sync with nothing new never loads the embedding model; the first question would
            self.embedder.embed_query("warm-up")
        except EmbedderError as exc:
            self._set(state="error", error=str(exc))
            return
        if warm_llm:
            try:
                self._engine_for_chat().warm()
            except Exception as exc:  # any failure here is reported in the status, never fatal
                log.warning("Could not load the language model: %s", exc)

    def _start_watching(self) -> None:
        from tutor.watch import VaultWatcher

        with self._lock:
            if self._watcher is not None or self._closed:
                return
            self._watcher = VaultWatcher(self.vault, lambda _paths: self._wake.set(), self.debounce)
        self._watcher.start()
        threading.Thread(target=self._sync_on_wake, name="tutor-watch-sync", daemon=True).start()

    def _sync_on_wake(self) -> None:
        """Saves that arrive during a sync set the event again: one more sync picks them up."""
        while not self._closed:
            if not self._wake.wait(timeout=0.5):
                continue
            self._wake.clear()
            try:
                self.sync()
            except Exception:
                pass  # shown in the status; the next save tries again

    def close(self) -> None:
        self._closed = True
        if self._watcher is not None:
            self._watcher.stop()
        if self._prereader is not None:
            self._prereader.close()

    # -- index -------------------------------------------------------------------------------
    def sync(self, progress: Progress | None = None) -> "SyncReport":
        """Bring the index in step with the vault; only new or changed text is embedded."""
        from index.embedder import EmbedderError
        from index.sync import SyncError, sync

        def report_progress(stage: str, done: float, total: float) -> None:
            self._set(stage=stage, done=done, total=total)
            if progress:
                progress(stage, done, total)

        with self._sync_lock:
            self._set(state="syncing" if self.store.exists() else "indexing", stage=None, error=None)
            try:
                report = sync(self.vault, self.store, self.embedder, progress=report_progress)
            except (SyncError, EmbedderError) as exc:
                self._set(state="error", stage=None, error=str(exc))
                raise
            except Exception as exc:  # a bug or a broken disk: the status says so, the log has the trace
                log.exception("Sync failed")
                self._set(state="error", stage=None,
                          error=f"Indexing failed ({type(exc).__name__}: {exc}) - details in the terminal")
                raise
            with self._lock:
                if self._retriever is not None and report.rebuilt:
                    self._retriever = self._engine = None  # built for another embedding model
            self._stale = len(self.generated.stale(self.vault, self.store))
            self._set(state="ready", stage=None, seconds=report.seconds, synced_at=time.time(),
                      changed=len(report.changed) + len(report.deleted))
            return report

    def status(self) -> Status:
        stats = self.store.stats() if self.store.db_path.exists() else {}
        with self._lock:
            work, llm = dict(self._work), dict(self._llm)
        return Status(
            **work, **llm, notes=stats.get("notes", 0), chunks=stats.get("chunks", 0),
            embedding_model=stats.get("model_id"), last_sync=stats.get("last_sync"),
            skipped=stats.get("skipped", []), warnings=self._warnings() if stats else [],
            llm=self.llm_spec, stale=self._stale, indexed=stats.get("generation") is not None,
            kept=self._kept(),
        )

    def _kept(self) -> int | None:
        from tutor.llm_blocks import enabled

        blocks = getattr(self._chat_model, "blocks", None)
        return len(blocks) if blocks is not None and enabled() else None

    def _set(self, **fields) -> None:
        with self._lock:
            if "state" in fields:  # a new phase starts without the last one's progress
                self._work = {k: v for k, v in self._work.items() if k not in ("stage", "done", "total")}
            self._work.update(fields)

    def _warnings(self) -> list[dict]:
        import json

        with self.store.connect() as con:
            rows = con.execute("SELECT path, warnings FROM notes WHERE warnings != '[]' ORDER BY path").fetchall()
        return [{"path": p, "warning": w} for p, ws in rows for w in json.loads(ws)]

    def tags(self) -> list[tuple[str, int]]:
        """The vault's tags with how many notes carry each, most used first."""
        if not self.store.db_path.exists():
            return []
        with self.store.connect() as con:
            rows = con.execute("SELECT tag, COUNT(*) FROM note_tags GROUP BY tag ORDER BY COUNT(*) DESC, tag").fetchall()
        return [(tag, count) for tag, count in rows]

    def link(self, note: str) -> str:
        from tutor.chat import obsidian_link

        return obsidian_link(self.vault.name, note)

    def _need_index(self):
        from tutor.retrieve import Retriever

        status = self.status()
        if not status.indexed:
            raise NotReady(status.error or "Your notes are still being indexed - this takes a minute the first time.")
        with self._lock:
            if self._retriever is None:
                self._retriever = Retriever(self.vault, self.embedder)
            return self._retriever

    # -- chat --------------------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[tuple[str, str]] = (), tags: Sequence[str] = ()) -> Iterator[tuple]:
        """ChatEngine's events (sources, token..., done), after ("loading", spec) if the LLM must load first."""
        self._need_index()
        if self._chat_model is None:
            yield "loading", self.llm_spec
        yield from self._engine_for_chat().ask(question, history=history, tags=tags)
        if prereader := self._reader():
            prereader.asked()  # spare time reads note sections for the next questions

    def typing(self, text: str, history: Sequence[tuple[str, str]] = (), tags: Sequence[str] = ()) -> None:
        """The question box changed: let the model read ahead (`tutor.preread`) unless
        $TUTOR_PREREAD is 0 (a laptop on battery may rather idle while its user types)."""
        if prereader := self._reader():
            prereader.typed(text, tags, history)

    def _reader(self):
        """The reader that uses the model's spare time, None if $TUTOR_PREREAD is 0."""
        if os.environ.get("TUTOR_PREREAD", "1") == "0" or self._closed:
            return None
        with self._lock:
            if self._prereader is None:
                from tutor.preread import Prereader

                self._prereader = Prereader(self._loaded_engine)
            return self._prereader

    def _loaded_engine(self):
        """The chat engine if both models are loaded and the index is ready, else None."""
        if self._chat_model is None or self._retriever is None:
            return None
        try:
            return self._engine_for_chat()  # it checks the index once
        except NotReady:
            return None

    def _engine_for_chat(self):
        from tutor.chat import ChatEngine

        retriever, model = self._need_index(), self._model()
        with self._lock:
            if self._engine is None or self._engine.model is not model or self._engine.retriever is not retriever:
                self._engine = ChatEngine(retriever, model, vault_name=self.vault.name)
            return self._engine

    def _model(self):
        """The answering model, loaded once per choice; the built-in one is assembled on first use."""
        from tutor.chat import make_model
        from tutor.llm import LLMError, default_model_path, ensure_default_model, parse_spec

        with self._llm_lock:
            if self._chat_model is not None:
                return self._chat_model
            spec = self.llm_spec
            try:
                if parse_spec(spec) == ("llamacpp", str(default_model_path())):
                    self._llm_set(llm_state="preparing", llm_fraction=0.0)
                    ensure_default_model(lambda done, total: self._llm_set(llm_fraction=done / total))
                self._llm_set(llm_state="loading", llm_fraction=None)
                model = make_model(spec)
            except LLMError as exc:
                self._llm_set(llm_state="error", llm_error=str(exc))
                raise
            self._llm_set(llm_state="ready", llm_error=None)
            self._chat_model = model
            return model

    def _llm_set(self, **fields) -> None:
        with self._lock:
            self._llm.update(fields)

    def llm_choices(self) -> tuple[list[str], str | None]:
        """Specs to offer: the built-in model, the current choice, and what Ollama lists; plus why
        Ollama's models are missing, when they are."""
        from tutor.llm import LLMError, list_ollama_models

        choices = list(dict.fromkeys(["default", self.llm_spec]))
        try:
            choices += [f"ollama:{name}" for name in list_ollama_models(timeout=3) if f"ollama:{name}" not in choices]
        except LLMError as exc:
            return choices, str(exc)
        return choices, None

    def set_llm(self, spec: str) -> str:
        """Switch the answering model; the old one stays in use if the new one cannot load."""
        from tutor.llm import parse_spec

        parse_spec(spec)  # an unknown form fails before anything is unloaded
        if spec == self.llm_spec and self._chat_model is not None:
            return spec
        previous = (self.llm_spec, self._chat_model)
        with self._llm_lock:
            self.llm_spec, self._chat_model = spec, None
        try:
            self._model()
        except Exception:
            with self._llm_lock:
                self.llm_spec, self._chat_model = previous
            self._llm_set(llm_state="ready" if previous[1] is not None else "idle")
            raise
        self._in_background(self._warm)  # as at start: its system prompt, its kept sections
        return spec

    def read_ahead(self) -> tuple[bool, bool]:
        """(on, fixed): whether the model keeps note sections it read in spare time
        (`tutor.llm_blocks`), and whether $TUTOR_BLOCKS decides that instead of the UI."""
        from tutor.llm_blocks import chosen_by_env, enabled

        return enabled(), chosen_by_env()

    def set_read_ahead(self, on: bool) -> None:
        """The UI's choice, kept for later runs; turned on, the loaded model starts using the
        sections kept before and reading more in spare time."""
        from tutor import settings

        settings.put("blocks", bool(on))
        if on and self._loaded_engine() is not None:
            self._in_background(self._warm)

    def _warm(self) -> None:
        engine = self._loaded_engine()
        if engine is None:
            return
        try:
            engine.warm()  # waits for an answer in progress: it holds the model
        except Exception as exc:
            log.warning("Could not prepare the language model: %s", exc)
            return
        if prereader := self._reader():
            prereader.asked()  # spare time from now on

    def _in_background(self, work: Callable[[], None]) -> None:
        threading.Thread(target=work, name="tutor-warm", daemon=True).start()

    # -- practice ----------------------------------------------------------------------------
    def quiz(self, tags: Sequence[str] = ()) -> "Quiz":
        """A practice session over the vault's questions and the saved generated ones."""
        from tutor.cli_practice import question_source
        from tutor.practice.quiz import Quiz

        self._need_index()
        return Quiz(question_source(self.vault, tuple(tags)), self.vault, self.history, n=None)

    def check(self, quiz: "Quiz", presented: "Presented", chosen: Sequence[str], seconds: float) -> "Grade":
        """Graded and remembered for review; an unsaved generated question is only graded."""
        from tutor.practice.quiz import grade

        if presented.id in quiz.records:
            return quiz.submit(presented, chosen, seconds)
        return grade(presented, chosen)

    def scores(self) -> list[dict]:
        """Per service (or per tag, in a vault without service tags): accuracy and the recent trend."""
        attempts = self.history.attempts(self.vault)
        by_tag: dict[str, list] = {}
        for attempt in attempts:
            for tag in attempt.tags:
                by_tag.setdefault(tag, []).append(attempt)
        services = {t: a for t, a in by_tag.items() if t.startswith("service/")} or by_tag
        rows = []
        for tag, answers in services.items():
            correct = sum(a.correct for a in answers)
            rows.append({
                "tag": tag, "attempts": len(answers), "correct": correct, "accuracy": correct / len(answers),
                "recent": [a.correct for a in answers[-RECENT:]], "last": max(a.at for a in answers),
            })
        return sorted(rows, key=lambda r: (r["accuracy"], -r["attempts"]))

    def _generator(self):
        from tutor.practice.generate import Generator, chat_model

        self._need_index()
        return Generator(self.vault, chat_model(self.llm_spec), self.embedder)

    def variant(self, record: "QuestionRecord", progress: "Callable[[GenerationProgress], None] | None" = None) -> "Generated":
        """The question with its correct options kept and fresh, checked wrong ones."""
        generator = self._generator()
        saved = self.generated.get(record.id)
        if saved is not None and saved.source_question:  # a variant of a variant varies the note's question
            record = generator.find_question(saved.source_question)
        return _usable(generator.distractors(record, progress=progress))

    def new_question(self, note: str, progress: "Callable[[GenerationProgress], None] | None" = None) -> "Generated":
        return _usable(self._generator().question(note, progress=progress))

    def as_record(self, generated: "Generated") -> "QuestionRecord":
        """A generated question as a practice question (shown and graded like the notes' own)."""
        import json

        from index.note import QuestionRecord

        note = generated.citations[0].note
        with self.store.connect() as con:
            row = con.execute("SELECT title, tags FROM notes WHERE path = ?", [note]).fetchone()
        title, tags = (row[0], tuple(json.loads(row[1]))) if row else (note, ())
        return QuestionRecord(generated.id, note, title, tags, generated.question)

    def save(self, generated: "Generated") -> "GeneratedItem":
        try:
            return self.generated.save(self.vault, generated.question, generated.citations,
                                       generated.source_question, generated.origin, index=self.store)
        except ValueError as exc:
            raise WorkspaceError(str(exc)) from exc

    def stale(self) -> list["GeneratedItem"]:
        return self.generated.stale(self.vault, self.store)

    def drop(self, item_id: str) -> bool:
        dropped = self.generated.drop(item_id)
        self._stale = len(self.stale())
        return dropped

    def regenerate(self, item_id: str,
                   progress: "Callable[[GenerationProgress], None] | None" = None) -> "GeneratedItem":
        """Ask again, from the notes as they are now, and replace the stale item."""
        item = self.generated.get(item_id)
        if item is None:
            raise WorkspaceError(f"No generated question {item_id} - it was dropped already.")
        fresh = self.save(_usable(self._generator().regenerate(item, progress)))
        if fresh.id != item.id:
            self.generated.drop(item.id)
        self._stale = len(self.stale())
        return fresh

    def export(self, fmt: str, tags: Sequence[str] = ()) -> tuple[Path, int]:
        """A markdown file or an Anki deck of every question, outside the vault; and how many."""
        from tutor.cli_practice import question_source
        from tutor.practice.export import check_target, write_anki, write_markdown

        self._need_index()
        records = sorted(question_source(self.vault, tuple(tags))(), key=lambda r: r.id)
        if not records:
            raise WorkspaceError("No practice questions to export - add a '## 📝 관련 문제' section to a note.")
        suffix = "apkg" if fmt == "anki" else "md"
        out = self.exports_dir() / f"{self.vault.name}-questions-{datetime.now():%Y%m%d-%H%M%S}.{suffix}"
        check_target(out, self.vault, force=False)
        (write_anki if fmt == "anki" else write_markdown)(records, out)
        return out, len(records)

    @staticmethod
    def exports_dir() -> Path:
        return tutor_home() / "exports"


def _usable(generated: "Generated") -> "Generated":
    """A question whose every option is right asks nothing: say so instead of showing it."""
    if len(generated.question.options) == len(generated.question.answer):
        raise WorkspaceError("No new wrong option passed the checks against your notes - try again, "
                             "or choose a larger model in the chat tab.")
    return generated
