"""Reading the sources while the question is still being typed.

On a 2-core CPU the model needs 4-9 s to read the sources before its first word, and the user
needs about as long to type a question. A pause in typing, or a word just ended, hands the text
so far to `ChatEngine.preread` on one background thread. Typing on does not stop it while the
prompt it reads stays the same (the words typed since find the same sources); a question
asked, or a prompt that changed, stops it within one small batch. When the finished question
finds the same sources, its answer starts after reading the question alone; a follow-up is
rewritten into its standalone query during the pause, so its sources are read ahead too.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)

PAUSE = 0.3  # seconds without a keystroke before reading ahead: not on every letter


class Prereader:
    def __init__(self, engine: Callable[[], Any], pause: float = PAUSE):
        """``engine()`` gives the ChatEngine to read with, or None while it is not loaded:
        typing never loads a model."""
        self._engine, self.pause = engine, pause
        self._cond = threading.Condition()
        self._pending: tuple[str, tuple[str, ...], tuple] | None = None
        self._version = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    def typed(self, text: str, tags: Sequence[str] = (), history: Sequence[tuple[str, str]] = ()) -> None:
        """The question box now holds ``text``; returns at once."""
        with self._cond:
            if self._closed:
                return
            self._version += 1
            self._pending = (text, tuple(tags), tuple(map(tuple, history)))
            self._cond.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tutor-preread", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop reading: a read in progress stops within one batch and the thread ends."""
        with self._cond:
            self._closed = True
            self._version += 1
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                while not self._closed:  # until the typing pauses or a word ends
                    version = self._version
                    if self._pending[0][-1:].isspace():
                        break
                    self._cond.wait(self.pause)
                    if self._version == version:
                        break
                if self._closed:
                    return
                (text, tags, history), self._pending = self._pending, None
            engine = self._engine()
            if engine is None:
                continue
            try:
                engine.preread(text, tags, stop=lambda: self._version != version, history=history,
                               newest=lambda: self._newest(tags, history))
            except Exception as exc:  # reading ahead is a bonus: the question itself will say what is wrong
                log.info("Could not read ahead for %r: %s", text[:40], exc)

    def _newest(self, tags: tuple[str, ...], history: tuple) -> str | None:
        """The text typed since a read began, if only the text changed (None otherwise)."""
        with self._cond:
            if self._closed or self._pending is None:
                return None
            text, pending_tags, pending_history = self._pending
        return text if (pending_tags, pending_history) == (tags, history) else None
