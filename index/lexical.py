"""Tokens for the lexical ranker: exact AWS names and Korean word pieces.

Korean particles glue onto nouns ("샤드를", "샤드의"), so whole words rarely match; overlapping
syllable bigrams do. Latin words stay whole and lowercased so "Kinesis" and "S3" match exactly; they are
split at punctuation, as SQLite's own tokenizer would split them again anyway.
"""
from __future__ import annotations

import re

_TOKEN = re.compile(r"[a-z0-9]+|[\uac00-\ud7a3]+")


def tokens(text: str) -> list[str]:
    out: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        word = match.group()
        if "\uac00" <= word[0] <= "\ud7a3":
            out += [word] if len(word) == 1 else [word[i : i + 2] for i in range(len(word) - 1)]
        else:
            out.append(word)
    return out


def match_query(text: str) -> str | None:
    """An FTS5 query that ORs every distinct token, each quoted so no token is an operator."""
    distinct = list(dict.fromkeys(tokens(text)))
    return " OR ".join(f'"{t}"' for t in distinct) if distinct else None
