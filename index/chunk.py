"""Sections → chunks that fit what the embedding model reads, each knowing where it came from."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

from index.note import Note

BODY_TOKENS = 320  # short chunks retrieve more precisely and embed faster than the 512 maximum
OVERLAP_TOKENS = 48
HEADER_RESERVE = 16  # room for the model's prompt and special tokens


@dataclass(frozen=True)
class Chunk:
    note: str  # path relative to the vault
    ordinal: int  # position within the note
    title: str
    headings: tuple[str, ...]
    line: int
    text: str  # the chunk's own body, shown to the user

    @property
    def embed_text(self) -> str:
        """Title and heading path travel with the body: 'EMR' in a heading should match."""
        header = self.title
        if self.headings:
            header += "\n" + " > ".join(self.headings)
        return f"{header}\n\n{self.text}"

    def content_hash(self, model_id: str) -> str:
        """Same text under the same model is never embedded twice, wherever it moves."""
        return hashlib.sha256(f"{model_id}\0{self.embed_text}".encode()).hexdigest()


def chunk_note(note: Note, count_tokens: Callable[[str], int], max_tokens: int = 512) -> list[Chunk]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    chunks: list[Chunk] = []
    for section in note.sections:
        header = count_tokens(Chunk(note.path, 0, note.title, section.headings, 0, "").embed_text)
        size = max(32, min(BODY_TOKENS, max_tokens - header - HEADER_RESERVE))
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=size,
            chunk_overlap=min(OVERLAP_TOKENS, size // 4),
            length_function=count_tokens,
            separators=["\n\n", "\n", ". ", "다. ", " ", ""],
            keep_separator="end",
        )
        for body in splitter.split_text(section.text):
            if body.strip():
                chunks.append(
                    Chunk(note.path, len(chunks), note.title, section.headings, section.line, body.strip())
                )
    return chunks
