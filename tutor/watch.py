"""Notice saved notes and call back once, a moment after the last save.

Editors save in bursts (a temp file, a rename, several writes; Obsidian writes on every pause in
typing), so each event restarts a short timer and one callback covers the whole burst. Only
events the index cares about count: notes, and folders that may hold them, outside hidden
folders such as `.obsidian/` (whose workspace file changes whenever a pane is clicked).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from index.sync import NOTE_SUFFIXES

DEBOUNCE_SECONDS = 1.0
_KINDS = {"created", "modified", "deleted", "moved"}  # not opened/closed: reading is no change


class VaultWatcher:
    """`on_change(paths)` runs on a timer thread with the vault-relative paths that changed."""

    def __init__(self, vault: Path, on_change: Callable[[set[str]], None], debounce: float = DEBOUNCE_SECONDS):
        self.vault = Path(vault).expanduser().resolve()
        self.on_change, self.debounce = on_change, debounce
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._timer: threading.Timer | None = None
        self._observer = None

    def start(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                watcher.notice(event.event_type, event.is_directory, event.src_path, getattr(event, "dest_path", ""))

        self._observer = Observer()
        self._observer.schedule(Handler(), str(self.vault), recursive=True)
        self._observer.daemon = True
        self._observer.start()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def notice(self, kind: str, is_directory: bool, *paths: str) -> None:
        """One file-system event; relevant ones (re)start the debounce timer."""
        if kind not in _KINDS:
            return
        relevant = {rel for rel in map(self._relative, filter(None, paths)) if rel and _counts(rel, kind, is_directory)}
        if not relevant:
            return
        with self._lock:
            self._changed |= relevant
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.debounce, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            changed, self._changed, self._timer = self._changed, set(), None
        if changed:
            self.on_change(changed)

    def _relative(self, path: str) -> str | None:
        try:
            return Path(path).resolve().relative_to(self.vault).as_posix()
        except ValueError:
            return None


def _counts(rel: str, kind: str, is_directory: bool) -> bool:
    if any(part.startswith(".") for part in rel.split("/")):
        return False
    if is_directory:  # renamed or deleted, a folder takes its notes along with one event
        return kind in ("moved", "deleted")
    return rel.lower().endswith(NOTE_SUFFIXES)
