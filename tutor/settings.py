"""Choices made in the UI that outlive it, in $TUTOR_HOME/settings.json.

An environment variable that names the same choice wins: a script or a test that sets it
gets what it asked for whatever was ticked in the browser.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def _path():
    from index.home import tutor_home

    return tutor_home() / "settings.json"


def _read() -> dict:
    try:
        data = json.loads(_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # unreadable: the defaults, and say so once it is written
        log.warning("Ignoring %s (%s); the defaults apply", _path(), exc)
        return {}
    return data if isinstance(data, dict) else {}


def get(name: str, default: Any = None) -> Any:
    return _read().get(name, default)


def put(name: str, value: Any) -> None:
    """Saved whole or not at all: a crash never leaves half a file."""
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**_read(), name: value}, indent=1), encoding="utf-8")
    tmp.replace(path)
