"""Tokens for the lexical ranker: exact AWS names and Korean word pieces.

Korean particles glue onto nouns ("샤드를", "샤드의"), so whole words rarely match; overlapping
syllable bigrams do. Latin words stay whole words, lowercased, so "Kinesis" and "S3" match as names; they are
split at punctuation, as SQLite's own tokenizer would split them again anyway.

English words are reduced to their Snowball stems ("fails", "failed" -> "fail"; "storing",
"stored" -> "store"): exam stems conjugate what the notes' keyword lists name in another form.
Stemming took lexical recall@5 on the starter vault's stems from 0.906 to 1.0 (`tutor eval`).
A different tokenizer makes a stored word index wrong, so ``VERSION`` is kept in the index's
manifest and a change re-reads the notes (no re-embedding).

Queries drop English function words and exam boilerplate ("A company wants a solution that meets
these requirements..."). In Korean notes those words occur almost only in the English practice
questions, so BM25 gives them a high weight and every exam-style query matched other notes'
question blocks instead of the note that explains the topic (`tutor eval`: lexical recall@5 on
the starter vault's question stems went from 0.03 to 0.78). Only the query side filters, so
an existing index needs no rebuild.
"""
from __future__ import annotations

import functools
import re

VERSION = 2  # 1: unstemmed

_TOKEN = re.compile(r"[a-z0-9]+|[\uac00-\ud7a3]+")

_FUNCTION_WORDS = """a an the and or but if of to in on at by for with from as into onto over under than
then that this these those which who whom whose what when where why how is are was were be been being do
does did has have had having will would shall should can could may might must it its they them their there
here we our you your he she his her i me my not no nor so such only also each any all both few more most
other some own same very just about above after again against before below between during further once out
off up down through until while whether because per via"""
_EXAM_WORDS = """company companies organization business solution solutions want wants need needs requirement
requirements require requires required meet meets select choose two three combination option options action
actions take team teams engineer engineers engineering architect developer developers analyst analysts
specialist least operational overhead effort manner way currently new existing use uses using used
amazon aws"""


@functools.cache
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=1 << 16)
def stem(token: str) -> str:
    """The indexed form of a token. A vault's vocabulary is small and repeats: each distinct
    word is stemmed once. Korean bigrams and names with digits ("s3", "ec2") stay whole."""
    return _stemmer().stemWord(token) if token.isascii() and token.isalpha() else token


_STOPWORDS = (_FUNCTION_WORDS + " " + _EXAM_WORDS).split()
# Korean question phrasing ("무슨 일을 해?", "어떻게 설정하나요?"), dropped as the bigrams a query
# is split into: notes state things rather than ask, so these matched whatever note happened to
# use the syllables. Lexical MRR on Korean held-out questions 0.944 -> 0.959, on Hangul-spelt
# names 0.805 -> 0.839; nothing else moved (`bench/retrieval_bench.py`).
_KOREAN_QUESTION_WORDS = """무슨 어떻게 어떤 무엇 뭐야 뭔가요 뭐예요 인가요 하나요 되나요 있나요 있어 알려줘
알려주세요 해줘 려면 얼마나 언제 어디 일을 일까"""
_KOREAN_BIGRAMS = [w[i: i + 2] for w in _KOREAN_QUESTION_WORDS.split() for i in range(len(w) - 1)]
QUERY_STOPWORDS = frozenset(_STOPWORDS + [stem(w) for w in _STOPWORDS] + _KOREAN_BIGRAMS)
# Korean words the notes use for one idea, each note its own ("아테나 요금" asks about a section
# headed "과금 모델"). A query term from a group brings in the rest, on the query side only.
_SYNONYMS = [group.split() for group in ("요금 과금 비용 가격",)]
_SYNONYM_OF = {word: group for group in _SYNONYMS for word in group}


def tokens(text: str) -> list[str]:
    """Words as written (lowercased), Korean as bigrams: what names are compared by."""
    out: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        word = match.group()
        if "\uac00" <= word[0] <= "\ud7a3":
            out += [word] if len(word) == 1 else [word[i : i + 2] for i in range(len(word) - 1)]
        else:
            out.append(word)
    return out


def terms(text: str) -> list[str]:
    """What the word index holds and is searched by: the tokens, stemmed."""
    return [stem(t) for t in tokens(text)]


def match_query(text: str) -> str | None:
    """An FTS5 query that ORs every distinct token, each quoted so no token is an operator.

    A query made only of stopwords ("What is the?") keeps them rather than match nothing.
    """
    distinct = list(dict.fromkeys(terms(text)))
    kept = [t for t in distinct if t not in QUERY_STOPWORDS] or distinct
    kept = list(dict.fromkeys(s for t in kept for s in _SYNONYM_OF.get(t, [t])))
    return " OR ".join(f'"{t}"' for t in kept) if kept else None
