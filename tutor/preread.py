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
SPARE_AFTER = 3.0  # seconds without a keystroke before reading note sections for later


class Prereader:
    def __init__(self, engine: Callable[[], Any], pause: float = PAUSE, spare_after: float = SPARE_AFTER):
        """``engine()`` gives the ChatEngine to read with, or None while it is not loaded:
        typing never loads a model."""
        self._engine, self.pause, self.spare_after = engine, pause, spare_after
        self._cond = threading.Condition()
        self._pending: tuple[str, tuple[str, ...], tuple] | None = None
        self._version = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._text = ""  # in the question box: spare time is spent only while it is empty
        self._spare = True  # spare time may be used to read note sections (until all are read)

    def typed(self, text: str, tags: Sequence[str] = (), history: Sequence[tuple[str, str]] = ()) -> None:
        """The question box now holds ``text``; returns at once."""
        with self._cond:
            if self._closed:
                return
            self._version += 1
            self._text = text
            self._pending = (text, tuple(tags), tuple(map(tuple, history)))
            self._start()

    def asked(self) -> None:
        """A question was answered and the box cleared: once no key is pressed for a while,
        spare time reads note sections for later questions, this one's sources first."""
        with self._cond:
            if self._closed:
                return
            self._text, self._spare = "", True
            self._start()

    def _start(self) -> None:
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
                    # Spare time only while the box is empty: reading sections while a question
                    # is written would push the sources read for it out of the KV cache.
                    spare = self._spare and not self._text.strip()
                    if not self._cond.wait(self.spare_after if spare else None) and self._pending is None:
                        break
                if self._closed:
                    return
                if self._pending is None:
                    self._read_spare(self._version)
                    continue
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

    def _read_spare(self, version: int) -> None:
        """Read note sections for later questions (`ChatEngine.read_spare`) until typing
        starts again; called holding the condition's lock, released while reading."""
        self._cond.release()
        try:
            engine = self._engine()
            done = engine is not None and engine.read_spare(lambda: self._version != version)
        except Exception as exc:
            log.info("Could not read note sections ahead: %s", exc)
            done = True
        finally:
            self._cond.acquire()
        if self._version == version:
            self._spare = not done

    def _newest(self, tags: tuple[str, ...], history: tuple) -> str | None:
        """The text typed since a read began, if only the text changed (None otherwise)."""
        with self._cond:
            if self._closed or self._pending is None:
                return None
            text, pending_tags, pending_history = self._pending
        return text if (pending_tags, pending_history) == (tags, history) else None
