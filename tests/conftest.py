"""Shared fixtures: an isolated TUTOR_HOME and a fake embedder registered like a real one."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from index.embedder import Embedder, register_embedder

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seeds"


class FakeEmbedder(Embedder):
    """Hashed character-trigram vectors: deterministic, similar texts score close.

    Every text it is asked to embed is recorded, so tests can count the work a sync did.
    """

    model_id = "fake-trigram-64"
    instances: list["FakeEmbedder"] = []

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.inputs: list[str] = []
        self.loaded = False
        FakeEmbedder.instances.append(self)

    def embed_batch(self, texts, query=False):
        self.loaded = True
        if not query:
            self.inputs.extend(texts)
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in zip(rows, texts):
            text = re.sub(r"\s+", " ", text.lower())
            for i in range(max(1, len(text) - 2)):
                digest = hashlib.blake2b(text[i : i + 3].encode(), digest_size=4).digest()
                row[int.from_bytes(digest, "little") % self.dim] += 1.0
            row /= np.linalg.norm(row) or 1.0
        return rows


@pytest.fixture(autouse=True)
def tutor_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TUTOR_HOME", str(home))
    return home


@pytest.fixture
def fake_embedder(monkeypatch):
    FakeEmbedder.instances.clear()
    register_embedder("fake", FakeEmbedder)
    monkeypatch.setenv("TUTOR_EMBED_MODEL", "fake")
    return FakeEmbedder


def write_note(vault: Path, name: str, title: str, sections: dict[str, str], tags=("service/s3",)) -> Path:
    """A note in the seed's shape: frontmatter, a Korean h1, one h2 per section."""
    lines = ["---", f"title: {title}", "created: 2025-08-20", "tags:"]
    lines += [f"- {t}" for t in tags]
    lines += ['aliases: ["' + title + '-alias"]', "---", "", f"# {title} 노트", ""]
    for heading, body in sections.items():
        lines += [f"## {heading}", "", body, ""]
    path = vault / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def prepared_model(tmp_path_factory) -> Path:
    """The real embedding model, prepared once for the whole session."""
    from index.e5prep import prepare_e5

    return prepare_e5(tmp_path_factory.mktemp("models") / "multilingual-e5-small")


@pytest.fixture(scope="session")
def starter_home(tmp_path_factory, prepared_model) -> Path:
    """A TUTOR_HOME holding the real model and an index of the starter vault, built once."""
    import os

    from index.embedder import get_embedder
    from index.home import index_dir
    from index.store import Store
    from index.sync import sync

    home = tmp_path_factory.mktemp("starter-home")
    (home / "models").mkdir()
    (home / "models" / prepared_model.name).symlink_to(prepared_model)
    previous = os.environ.get("TUTOR_HOME")
    os.environ["TUTOR_HOME"] = str(home)
    try:
        sync(REPO / "notes", Store(index_dir(REPO / "notes")), get_embedder("multilingual-e5-small"))
    finally:
        if previous is None:
            os.environ.pop("TUTOR_HOME")
        else:
            os.environ["TUTOR_HOME"] = previous
    return home


@pytest.fixture
def starter(starter_home, monkeypatch):
    """Use the shared starter index (read-only) in this test."""
    monkeypatch.setenv("TUTOR_HOME", str(starter_home))
    monkeypatch.delenv("TUTOR_EMBED_MODEL", raising=False)
    return REPO / "notes"
