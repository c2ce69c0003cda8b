"""New practice options from the notes: distractor variants of a question, and new questions.

Every option is grounded (the model sees numbered note sections and must cite one) and checked
(`checks.py`); rejected options go back to the model with the reason, for the missing count
only, a bounded number of times. What could not be generated is reported, never padded.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from index.note import Question, QuestionRecord
from tutor.llm import LLMError
from tutor.practice import prompts
from tutor.practice.checks import Candidate, Checker, IndexTerms, Rejection, Target, normalized
from tutor.practice.generated import Citation, GeneratedItem, generated_id

if TYPE_CHECKING:  # pragma: no cover
    from index.embedder import Embedder
    from langchain_core.language_models import BaseChatModel

DEFAULT_N = 3
RETRIES = 2  # after the first answer: three model calls at most per variant
MAX_SOURCES = 4
# Candidates asked for beyond the missing count: the 1.5B model copies an option or the answer in
# about half its candidates, so a call that over-asks fills a variant where a retry would be needed.
EXTRA = 2
SOURCE_CHARS = 240  # per related source: the request stays near 550 tokens (about 6 s to read on 2 cores)
SECTION_CHARS = 1500  # the section a new question is written from
MIN_SECTION_CHARS = 120  # Korean prose is dense: two or three sentences
LETTERS = "ABCDEFGH"  # what the note parser reads back


class GenerationError(Exception):
    """Nothing usable could be generated, or the input cannot be found; the message says what to do."""


def chat_model(spec: str | None = None, **opts: Any) -> "BaseChatModel":
    """Warmer than chat, so retries do not repeat the rejected options; room for five options."""
    from tutor.llm import get_chat_model

    return get_chat_model(spec, **{"temperature": 0.6, "max_tokens": 700, **opts})


@dataclass(frozen=True)
class Source:
    number: int
    citation: Citation
    text: str

    def prompt(self, chars: int = SOURCE_CHARS) -> str:
        text = " ".join(self.text.split())
        text = text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + " …"
        return f"[{self.number}] {self.citation.note} › {self.citation.heading}\n{text}"


@dataclass(frozen=True)
class Progress:
    """One step of a generation as it happens: a variant takes half a minute on a CPU, so callers
    show what the model is doing instead of nothing."""

    # "call" (a model call starts) | "accepted" | "rejected" (a candidate, as checked) | "end" (the
    # result is ready; a generation that fails raises instead)
    kind: str
    text: str = ""  # the candidate; a rejected new question's stem; empty for an answer that was not JSON
    reason: str = ""  # why it was rejected, as the checker says it
    call: int = 0  # the model call it belongs to, from 1 ("end": the calls made)
    most: int = 0  # "call": the most calls this generation can make, this one included
    why: str = ""  # "rejected": the check's kind (`Rejection.kind`), so a UI can word it in its language
    of: str = ""  # "rejected": what the candidate copies (`Rejection.of`)


@dataclass
class Run:
    """What one generation cost and what it threw away; told to `progress` as it happens."""

    rejected: list[Rejection] = field(default_factory=list)
    missing: int = 0  # wrong options asked for that no candidate survived the checks for
    calls: int = 0
    first_try: bool = False  # every requested option passed on the first call
    progress: Callable[[Progress], None] | None = None

    def tell(self, kind: str, text: str = "", reason: str = "", most: int = 0, why: str = "", of: str = "") -> None:
        if self.progress is not None:
            self.progress(Progress(kind, text, reason, self.calls, most, why, of))

    def checked(self, accepted: Sequence[Candidate], rejected: Sequence[Rejection]) -> None:
        for candidate in accepted:
            self.tell("accepted", candidate.text)
        for rejection in rejected:
            self.tell("rejected", rejection.text, rejection.reason, why=rejection.kind, of=rejection.of)


@dataclass
class Generated:
    """A complete question (kept or new correct options + checked wrong ones) and its report."""

    vault: Path
    question: Question
    citations: list[Citation]
    source_question: str | None
    origin: dict
    rejected: list[Rejection]
    missing: int
    calls: int
    first_try: bool
    seconds: float

    @property
    def id(self) -> str:
        return generated_id(self.vault, self.question)

    def to_json(self) -> dict:
        q = self.question
        return {
            "id": self.id, "stem": q.stem, "options": dict(q.options), "answer": list(q.answer),
            "explanations": dict(q.explanations), "citations": [c.to_json() for c in self.citations],
            "source_question": self.source_question,
            "rejected": [r.to_json() for r in self.rejected], "missing": self.missing,
        }


class Generator:
    """One vault's index, retriever, checks and chat model, reused across many generations."""

    def __init__(self, vault: Path, model: "BaseChatModel", embedder: "Embedder | None" = None,
                 retries: int = RETRIES, seed: int | None = None):
        from tutor.retrieve import Retriever

        self.vault = Path(vault)
        self.retriever = Retriever(self.vault, embedder)
        self.index = self.retriever.store
        self.terms = IndexTerms(self.index)
        self.checker = Checker(self.terms, self.retriever.embedder)
        self.model, self.retries, self.rng = model, retries, random.Random(seed)
        self._questions: tuple | None = None

    def _question_sections(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        if self._questions is None:
            self._questions = tuple(dict.fromkeys((r.note, r.question.headings) for r in self.index.questions()))
        return self._questions

    def find_question(self, question_id: str) -> QuestionRecord:
        records = {r.id: r for r in self.index.questions()}
        if question_id in records:
            return records[question_id]
        import difflib

        close = difflib.get_close_matches(question_id, list(records), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise GenerationError(
            f"No question {question_id!r} in {self.vault} ({len(records)} questions; ids look like "
            f"'note-name#1').{hint} Run 'tutor index' if you just added it."
        )

    # -- distractor variants -------------------------------------------------------------------
    def distractors(self, record: QuestionRecord, n: int = DEFAULT_N,
                    progress: Callable[[Progress], None] | None = None) -> Generated:
        """A variant of `record`: its correct options kept word for word, `n` new wrong ones."""
        started, run = time.perf_counter(), Run(progress=progress)
        q = record.question
        if not 1 <= n <= len(LETTERS) - len(q.answer):
            raise GenerationError(f"--n must be 1-{len(LETTERS) - len(q.answer)} for {record.id}")
        own = Citation(record.note, q.headings)
        correct = [q.options[letter] for letter in q.answer]
        sources = self._related(q.stem + "\n" + "\n".join(correct), own, record.tags)
        target = Target(q.stem, tuple(correct), tuple(q.options.values()))
        accepted = self._fill(target, sources, n, [], run, calls=1 + self.retries)
        fallback = f"노트의 정답입니다 ({own.note} › {own.heading})"
        kept = [(q.options[letter], q.explanations.get(letter) or fallback, own, True) for letter in q.answer]
        origin = {"kind": "distractors", "question": record.id, "n": n}
        return self._finish(run, q.stem, kept, accepted, sources, own, record.id, origin, started)

    def _related(self, query: str, own: Citation, tags: tuple[str, ...], first: Source | None = None) -> list[Source]:
        """Prose sections on the topic, alternating with other notes on the same services.

        Question blocks are left out: a reason should rest on what a note explains, and options
        shown there invite copying.
        """
        questions = self._question_sections()
        exclude = ((own.note, own.headings), *questions)
        topic = self.retriever.search(query, k=MAX_SOURCES, exclude=exclude)
        services = tuple(t for t in tags if t.startswith("service/"))
        neighbours = self.retriever.search(
            query, k=MAX_SOURCES, tags=services, exclude=((own.note, ()), *questions)
        ) if services else []
        sources = [first] if first else []
        seen = {(own.note, own.headings)}
        for hit in [h for pair in itertools.zip_longest(topic, neighbours) for h in pair if h]:
            if (hit.note, hit.headings) not in seen and len(sources) < MAX_SOURCES:
                seen.add((hit.note, hit.headings))
                sources.append(Source(len(sources) + 1, Citation(hit.note, hit.headings), hit.text))
        return sources

    def _fill(self, target: Target, sources: list[Source], want: int, accepted: list[Candidate], run: Run,
              calls: int, rejected: Sequence[Rejection] = ()) -> list[Candidate]:
        """Ask until `want` candidates pass or `calls` run out; each call asks only for the missing count.

        A retry is the same request plus what was accepted and what was rejected and why: the model
        never sees its own rejected answer as something it said, which a small model would repeat.
        """
        request = prompts.render(
            prompts.DISTRACTOR_REQUEST, sources="\n\n".join(s.prompt() for s in sources), stem=target.stem,
            correct=prompts.listed(target.correct),
        )
        target = dataclasses.replace(target, borrowed=_borrowed(request))  # the request holds the stem
        rejected = list(rejected)  # what the model is told; run.rejected holds everything
        first = run.calls == 0
        while len(accepted) < want and calls > 0:
            count, calls = want - len(accepted), calls - 1
            asked = count + EXTRA
            run.calls += 1
            run.tell("call", most=run.calls + calls)
            if rejected or accepted:
                ask = prompts.render(prompts.RETRY, accepted=_listed(c.text for c in accepted) or "(none)",
                                     rejected=_reasons(rejected), count=asked)
            else:
                ask = prompts.render(prompts.ASK, count=asked)
            schema = _schemas().distractors(count, asked, len(sources))
            messages = _messages(prompts.DISTRACTOR_SYSTEM, request + ask,
                                 example=(prompts.DISTRACTOR_EXAMPLE, prompts.DISTRACTOR_EXAMPLE_ANSWER))
            kept, bad, written = [], [], set()
            try:
                with contextlib.closing(_items(self.model, schema, messages)) as items:
                    for d in items:  # checked as each is written; the rest is never generated
                        candidate = Candidate(d.text.strip(), d.reason.strip(), d.source)
                        ok, no = self.checker.review([candidate], target, [*accepted, *kept])
                        run.checked(ok, no)
                        # A small model that writes a candidate, or copies an option, twice in one
                        # answer is looping (seen: the correct option five times); the retry names
                        # what it must not repeat.
                        marks = _marks(candidate, no)
                        again, written = written & marks, written | marks
                        kept, bad = kept + ok, bad + no
                        if len(kept) >= count or again:
                            break
            except _Junk as exc:
                bad.append(Rejection("", f"the answer was not valid JSON for the form: {exc}", "invalid"))
                run.checked([], bad[-1:])
            accepted = [*accepted, *kept]
            run.first_try = first and len(kept) >= count
            rejected += bad
            run.rejected += bad
            first = False
        run.missing = want - len(accepted)
        return accepted

    def _finish(self, run: Run, stem: str, kept: list, accepted: list[Candidate], sources: list[Source],
                own: Citation, source_question: str | None, origin: dict, started: float) -> Generated:
        """Shuffle kept correct options and new wrong ones together; letters follow their options."""
        new = []
        for c in accepted:
            cited = sources[c.source - 1].citation
            new.append((c.text, f"{c.reason} (근거: {cited.note} › {cited.heading})", cited, False))
        options = kept + new
        self.rng.shuffle(options)
        letters = LETTERS[: len(options)]
        explanations = {letter: why for letter, (_, why, _, _) in zip(letters, options)}
        question = Question(
            stem=stem,
            options={letter: text for letter, (text, _, _, _) in zip(letters, options)},
            answer=tuple(letter for letter, option in zip(letters, options) if option[3]),
            explanations=explanations,
            explanation="\n".join(f"{letter}) {why}" for letter, why in explanations.items()),
            headings=own.headings,
            number=0,
        )
        citations = list(dict.fromkeys([own, *(cited for _, _, cited, _ in new)]))
        run.tell("end")
        return Generated(self.vault, question, citations, source_question, origin, run.rejected, run.missing,
                         run.calls, run.first_try, round(time.perf_counter() - started, 2))

    # -- new questions -------------------------------------------------------------------------
    def question(self, note: str, heading: str | None = None, n: int = DEFAULT_N,
                 progress: Callable[[Progress], None] | None = None) -> Generated:
        """A new question answerable from one section of `note` alone, with `n` checked wrong options."""
        started, run = time.perf_counter(), Run(progress=progress)
        section = Source(1, *self._section(note, heading))
        own = section.citation
        sources = self._related(own.heading + "\n" + section.text[:600], own, self._note_tags(own.note), section)
        request = prompts.render(
            prompts.QUESTION_REQUEST, note=own.note, heading=own.heading,
            section=section.prompt(SECTION_CHARS).split("\n", 1)[1],
            sources="\n\n".join(s.prompt() for s in sources[1:]) or "(none)", correct_count=1, count=n,
        )
        written = self._write_question(request, section, len(sources), run)
        correct = [o for o in written.options if o.correct]
        stem = written.stem.strip()
        if len(correct) > 1 and "select" not in stem.casefold():
            stem += f" (Select {len(correct)})"  # the seed's convention: say how many to pick
        target = Target(stem, tuple(o.text.strip() for o in correct), ())
        wrong = [Candidate(o.text.strip(), o.explanation.strip(), o.source) for o in written.options if not o.correct]
        accepted, bad = self.checker.review(wrong, target)
        accepted, run.rejected = accepted[:n], run.rejected + bad
        run.checked(accepted, bad)
        run.first_try = run.calls == 1 and not bad and len(accepted) == n
        if len(accepted) < n:
            accepted = self._fill(target, sources, n, accepted, run, calls=self.retries, rejected=bad)
        cite = f"(근거: {own.note} › {own.heading})"
        kept = [(o.text.strip(), f"{o.explanation.strip()} {cite}", own, True) for o in correct]
        origin = {"kind": "question", "note": own.note, "headings": list(own.headings), "n": n}
        return self._finish(run, target.stem, kept, accepted, sources, own, None, origin, started)

    def _write_question(self, request: str, section: Source, sources: int, run: Run) -> Any:
        problem = None
        for left in reversed(range(1 + self.retries)):
            run.calls += 1
            run.tell("call", most=run.calls + left + self.retries)  # then up to `retries` calls for options
            ask = prompts.render(prompts.QUESTION_RETRY, problem=problem) if problem else ""
            try:
                messages = _messages(prompts.QUESTION_SYSTEM, request + ask)
                written = _invoke(self.model, _schemas().question(sources), messages)
            except _Junk as exc:
                problem = f"the answer was not valid JSON for the form: {exc}"
                run.rejected.append(Rejection("", problem, "invalid"))
                run.checked([], run.rejected[-1:])
                continue
            problem = self._question_problem(written, section)
            if not problem:
                return written
            run.rejected.append(Rejection(written.stem, problem, "question"))
            run.checked([], run.rejected[-1:])
        raise GenerationError(
            f"No usable question from {section.citation.note} › {section.citation.heading} after {run.calls} "
            f"tries ({'; '.join(r.reason for r in run.rejected[-3:])}). Try another --heading, or a larger "
            "model with --llm."
        )

    def _question_problem(self, written: Any, section: Source) -> str | None:
        correct = [o.text.strip() for o in written.options if o.correct]
        if not written.stem.strip():
            return "the stem is empty"
        if not correct:
            return "no option is marked correct"
        if len(correct) == len(written.options) or len(correct) > 3:
            return f"{len(correct)} of {len(written.options)} options are marked correct; mark one or two"
        stem = normalized(written.stem)
        for text in correct:
            if len(normalized(text)) >= 8 and normalized(text) in stem:
                return f"the stem contains the answer {text!r}"
            if not self.checker.supported(text, section.text):
                return f"{text!r} is marked correct, but section [1] does not say so"
        for i, text in enumerate(correct):
            for other in correct[i + 1:]:
                if self.checker.same_meaning(text, other):
                    return f"the correct options {text!r} and {other!r} say the same thing"
        return None

    def _note_tags(self, path: str) -> tuple[str, ...]:
        with self.index.connect() as con:
            row = con.execute("SELECT tags FROM notes WHERE path = ?", [path]).fetchone()
        return tuple(json.loads(row[0])) if row else ()

    def _section(self, note: str, heading: str | None) -> tuple[Citation, str]:
        """The section's text as indexed (so its hash is what was read), chunk overlaps removed."""
        path = _note_path(self.vault, note)
        with self.index.connect() as con:
            rows = con.execute("SELECT headings, text FROM chunks WHERE path = ? ORDER BY ordinal", [path]).fetchall()
            row = con.execute("SELECT questions FROM notes WHERE path = ?", [path]).fetchone()
        if not rows:
            raise GenerationError(f"No indexed note {path!r} in {self.vault}: give its path inside the vault, "
                                  "or run 'tutor index' if it is new")
        sections: dict[tuple[str, ...], list[str]] = {}
        for headings, text in rows:
            sections.setdefault(tuple(json.loads(headings)), []).append(text)
        if heading:
            wanted = heading.strip().casefold()
            found = [h for h in sections if wanted in (" > ".join(h).casefold(), h[-1].casefold() if h else "")]
            if not found:
                raise GenerationError(f"No heading {heading!r} in {path}; its headings: "
                                      + "; ".join(" > ".join(h) for h in sections if h))
            return Citation(path, found[0]), _joined(sections[found[0]])
        asked = {tuple(q["headings"]) for q in json.loads(row[0])} if row else set()
        eligible = [h for h in sections if not any(h[: len(a)] == a for a in asked)
                    and len(_joined(sections[h])) >= MIN_SECTION_CHARS]
        if not eligible:
            raise GenerationError(f"{path} has no section of {MIN_SECTION_CHARS}+ characters outside its "
                                  "questions; name one with --heading")
        chosen = self.rng.choice(eligible)
        return Citation(path, chosen), _joined(sections[chosen])

    # -- stale items -----------------------------------------------------------------------------
    def regenerate(self, item: GeneratedItem, progress: Callable[[Progress], None] | None = None) -> Generated:
        """Ask again what produced `item`, from the notes as they are now."""
        origin = item.origin
        if origin.get("kind") == "distractors":
            return self.distractors(self.find_question(origin["question"]), origin.get("n", DEFAULT_N), progress)
        if origin.get("kind") == "question":
            headings = origin["headings"]
            return self.question(origin["note"], " > ".join(headings) if headings else None,
                                 origin.get("n", DEFAULT_N), progress)
        raise GenerationError(f"{item.id} does not say how it was made; drop it with 'tutor generate stale --drop'")


class _Junk(Exception):
    """The model's answer did not validate against the schema: worth another try."""


def _invoke(model, schema, messages):
    from tutor.llm import structured

    with _junk_as_retry():
        return structured(model, schema).invoke(messages)


def _items(model, schema, messages):
    from tutor.llm import structured_items

    with _junk_as_retry():
        yield from structured_items(model, schema, "distractors", messages)


@contextlib.contextmanager
def _junk_as_retry():
    """An answer that is not valid for the form is worth another try; other LLM errors are not."""
    try:
        yield
    except LLMError as exc:
        import pydantic

        cause = exc.__cause__
        if isinstance(cause, pydantic.ValidationError):
            problems = [f"{'.'.join(map(str, e['loc'])) or 'the answer'}: {e['msg']}" for e in cause.errors()[:2]]
            raise _Junk("; ".join(problems)) from exc
        raise


@functools.cache
def _schemas():
    """The JSON forms the model must fill, built on first use (pydantic is not free to import).

    Source numbers are an enum of the sources shown, so a constrained model cannot cite one that
    does not exist, and any other backend's answer that does fails validation and is retried.
    """
    from types import SimpleNamespace
    from typing import Literal

    from pydantic import BaseModel, Field, create_model

    def source(count: int, what: str):
        return (Literal[tuple(range(1, count + 1))], Field(description=f"number of the source {what} rests on"))

    @functools.cache
    def distractors(least: int, most: int, sources: int) -> type[BaseModel]:
        item = create_model(
            "Distractor",
            text=(str, Field(description="the wrong option, the same kind of thing as the correct options")),
            reason=(str, Field(description="one line in Korean: why it is wrong here")),
            source=source(sources, "the reason"),
        )
        return create_model("Distractors", distractors=(list[item], Field(min_length=least, max_length=most)))

    @functools.cache
    def question(sources: int) -> type[BaseModel]:
        option = create_model(
            "NewOption", text=(str, ...), correct=(bool, ...),
            explanation=(str, Field(description="one line in Korean: why it is right or wrong")),
            source=source(sources, "the explanation"),
        )
        return create_model("NewQuestion", stem=(str, ...),
                            options=(list[option], Field(min_length=3, max_length=len(LETTERS))))

    return SimpleNamespace(distractors=distractors, question=question)


@functools.cache
def _example_names() -> frozenset[tuple[str, ...]]:
    """The names the distractor example uses, whole and by their head word ('dax', 'elasticache')."""
    from tutor.practice.checks import canonical, names

    answer = json.loads(prompts.DISTRACTOR_EXAMPLE_ANSWER)["distractors"]
    shown = [d["text"] for d in answer] + list(prompts.DISTRACTOR_EXAMPLE_CORRECT)
    found = {canonical(" ".join(n)) for text in shown for n in names(text)} - {()}
    return frozenset(found | {name[:1] for name in found})


def _borrowed(request: str) -> frozenset[tuple[str, ...]]:
    """Example names this request never mentions: only the example can have put them in a candidate."""
    from index.lexical import tokens

    present = set(tokens(request))
    return frozenset(name for name in _example_names() if not set(name) <= present)


def _marks(candidate: Candidate, rejected: list[Rejection]) -> set:
    """What a looping model repeats: the text it wrote, and each option or name it copied."""
    return {normalized(candidate.text), *((r.kind, r.of) for r in rejected if r.of)}


# Rejections told without quoting: the text they copy is already in the request (the correct
# options, the accepted list), and quoting the copy and its original again gave the 1.5B model
# more of the very text it kept writing out (one retry prompt held a correct option 9 times).
_UNQUOTED = {
    "correct": "- An option restated a correct option in other words: a wrong option must claim something "
               "different (another service, setting or step).",
    "duplicate": "- An option repeated one already written: each must be new.",
}


def _reasons(rejected: list[Rejection]) -> str:
    """The latest distinct rejections, enough to steer the model without bloating the prompt."""
    lines = list(dict.fromkeys(
        _UNQUOTED.get(r.kind) or (f"- {r.text!r}: {r.reason}" if r.text else f"- {r.reason}") for r in rejected))
    return "\n".join(lines[-8:])


def _messages(system: str, user: str, example: tuple[str, str] | None = None) -> list:
    """System rules, an optional worked example as the first turn, then the request."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    shown = [HumanMessage(example[0]), AIMessage(example[1])] if example else []
    return [SystemMessage(system), *shown, HumanMessage(user)]


def _listed(options) -> str:
    return "; ".join(f'"{o}"' for o in options)


def _note_path(vault: Path, note: str) -> str:
    """'athena-serverless-query', 'athena-serverless-query.md' or a file path -> the vault path."""
    path = Path(note).expanduser()
    if path.is_absolute() or path.exists():
        try:
            return path.resolve().relative_to(vault.resolve()).as_posix()
        except ValueError:
            raise GenerationError(f"{note} is not inside the vault {vault}") from None
    posix = path.as_posix()
    return posix if posix.endswith((".md", ".markdown")) else posix + ".md"


def _joined(texts: list[str]) -> str:
    """Consecutive chunks of a section overlap; keep each overlapping run once."""
    out = texts[0]
    for text in texts[1:]:
        overlap = next((k for k in range(min(len(out), len(text)), 0, -1) if out.endswith(text[:k])), 0)
        out += text[overlap:] if overlap else "\n" + text
    return out
