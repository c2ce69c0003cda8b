"""Where the program keeps what it builds: one home, never the package or the vault."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path


def tutor_home() -> Path:
    env = os.environ.get("TUTOR_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "tutor"


def models_dir() -> Path:
    return tutor_home() / "models"


def index_dir(vault: Path) -> Path:
    """One index per vault, named so a person can tell which is which."""
    vault = Path(vault).resolve()
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", vault.name).strip("-") or "vault"
    digest = hashlib.sha256(str(vault).encode()).hexdigest()[:10]
    return tutor_home() / "indexes" / f"{slug}-{digest}"
