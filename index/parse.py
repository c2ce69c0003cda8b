"""Markdown note -> Note: frontmatter, heading sections as plain text, practice questions.

Hand-written Obsidian notes are messy, so odd content never raises: it becomes a
Note.warning. Only files that cannot be read as text at all raise NoteSkipped.
Every regex here is linear-time (character classes exclude their own delimiters),
so a 500 KB single line costs milliseconds, not minutes.
"""
from __future__ import annotations

import codecs
import datetime as dt
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import yaml
from frontmatter.default_handlers import YAMLHandler
from langchain_text_splitters import MarkdownHeaderTextSplitter

from index.note import Note, NoteSkipped, Question, Section

MAX_NOTE_BYTES = 2 * 1024 * 1024
_MB = 1024 * 1024

# ---------------------------------------------------------------- reading bytes


def load_note(root: Path, file: Path) -> Note:
    """Read one vault file; `file` may be absolute or relative to `root`."""
    path = file if file.is_absolute() else root / file
    rel = path.relative_to(root).as_posix()
    data = _read_capped(path)
    text, warning = decode(data)
    if not text.strip():
        raise NoteSkipped("empty note")
    note = parse_note(text, rel)
    if warning:
        note.warnings.insert(0, warning)
    return note


def _read_capped(path: Path) -> bytes:
    """Never reads more than the limit, even from a file that grows or never ends."""
    try:
        size = path.stat().st_size
        if size <= MAX_NOTE_BYTES:
            with path.open("rb") as f:
                data = f.read(MAX_NOTE_BYTES + 1)
                size = len(data)
    except PermissionError:
        raise NoteSkipped("cannot read: permission denied") from None
    except OSError as exc:
        raise NoteSkipped(f"cannot read: {exc.strerror or exc}") from None
    if size > MAX_NOTE_BYTES:
        raise NoteSkipped(f"too large: {size / _MB:.1f} MB (limit {MAX_NOTE_BYTES // _MB} MB)")
    return data


_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\b\x1b") + b"\x7f"
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3131-\u318e]")


def decode(data: bytes) -> tuple[str, str | None]:
    """Korean Windows editors still save CP949, so accept it, but say so.

    UTF-16 is tried before the binary test because its text is full of NUL bytes.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = _try_decode(data, "utf-16")
        if text is not None:
            return text, _resave_hint("UTF-16")
    if _looks_binary(data):
        raise NoteSkipped("binary file")
    text = _try_decode(data, "utf-8-sig")
    if text is not None:
        return text, None
    text = _try_decode(data, "cp949")
    if text is not None and _mostly_hangul(text):
        return text, _resave_hint("cp949")
    text = data.decode("utf-8", errors="replace")
    damaged = text.count("\ufffd")
    if damaged <= max(3, len(text) // 1000):  # a stray bad byte should not cost the whole note
        return text, f"{damaged} byte(s) are not valid UTF-8 and were replaced with \ufffd; re-save as UTF-8"
    raise NoteSkipped("not UTF-8 text and not CP949/EUC-KR: save it as UTF-8")


def _try_decode(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _resave_hint(encoding: str) -> str:
    return f"decoded as {encoding} (not UTF-8); re-save as UTF-8 to silence this"


def _looks_binary(data: bytes) -> bool:
    if b"\x00" in data:
        return True
    controls = len(data) - len(data.translate(None, _CONTROL_BYTES))
    return controls > 0.05 * len(data)


def _mostly_hangul(text: str) -> bool:
    """CP949 decodes most Latin-1 bytes too (as Hanja); real Korean text is mostly Hangul."""
    foreign = len(_NON_ASCII.findall(text))
    return foreign > 0 and len(_HANGUL.findall(text)) >= foreign / 2


# ---------------------------------------------------------------- the note


def parse_note(text: str, path: str) -> Note:
    """`path` is the posix path relative to the vault root; line numbers are the file's."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    front = _split_frontmatter(text)
    meta = {str(k).lower(): v for k, v in front.meta.items()}
    raws = _raw_sections(front.body.split("\n"))
    note = Note(
        path=path,
        title=_title(meta, raws, path),
        tags=_dedupe([*_listed(_first(meta, "tags", "tag"), r"[,\s]+", "#"), *_body_tags(raws)]),
        aliases=_dedupe(_listed(_first(meta, "aliases", "alias"), r",")),
        created=_date(meta.get("created")),
        modified=_date(meta.get("modified")),
        warnings=[front.warning] if front.warning else [],
    )
    blocks = 0
    for raw in raws:
        headings = tuple(title for _, title in raw.heads)
        markdown = "\n".join(raw.lines)
        plain = to_plain_text(markdown)
        if plain:
            note.sections.append(Section(headings, plain, front.offset + raw.line + 1))
        label = headings[-1:] if headings and _QUESTION_LABEL.fullmatch(headings[-1]) else ()  # "### Q3. …?"
        first_line = front.offset + raw.start + 1 - len(label)
        found = scan_questions("\n".join([*label, markdown]), headings, blocks, first_line)
        note.questions.extend(found.questions)
        note.warnings.extend(found.warnings)
        blocks += found.blocks
    return note


class _Front(NamedTuple):
    meta: dict
    body: str
    offset: int  # lines of the file before the body's first line
    warning: str | None


_YAML = YAMLHandler()
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _split_frontmatter(text: str) -> _Front:
    """Uses python-frontmatter's delimiter and loader, but keeps offsets so lines stay true."""
    opening = _YAML.FM_BOUNDARY.match(text)
    if not opening:
        return _Front({}, text, 0, None)
    closing = _YAML.FM_BOUNDARY.search(text, opening.end())
    if not closing:
        return _Front({}, text, 0, "frontmatter opened with '---' on line 1 is never closed; read as text")
    body, offset = text[closing.end():], text.count("\n", 0, closing.end())
    try:
        meta = _YAML.load(text[opening.end():closing.start()], Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        first_line = text.count("\n", 0, opening.end()) + 1
        return _Front({}, body, offset, _yaml_warning(exc, first_line))
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        kind = type(meta).__name__
        return _Front({}, body, offset, f"frontmatter is a {kind}, not 'key: value' lines; ignored")
    return _Front(meta, body, offset, None)


def _yaml_warning(exc: yaml.YAMLError, first_line: int) -> str:
    """YAML notices an unclosed '[a, b' a line late, so name where the construct began too."""
    marks = (getattr(exc, "context_mark", None), getattr(exc, "problem_mark", None))
    lines = sorted({first_line + mark.line for mark in marks if mark is not None})
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if lines:
        where = f"line {lines[0]}" if len(lines) == 1 else f"lines {lines[0]}-{lines[-1]}"
        problem = f"{where}: {problem}"
    return f"broken YAML frontmatter ({problem}); its title, tags and aliases are ignored"


def _first(meta: dict, *keys: str) -> object:
    return next((meta[k] for k in keys if meta.get(k) is not None), None)


def _listed(value: object, separator: str, strip: str = "") -> list[str]:
    """A YAML list, or one string holding several items (Obsidian accepts both)."""
    if isinstance(value, list):
        items = [str(v) for v in value if v is not None]
    else:
        items = re.split(separator, str(value)) if value is not None else []
    cleaned = (item.strip().lstrip(strip).strip() for item in items)
    return [item for item in cleaned if item]


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    """Obsidian treats tags case-insensitively; the first spelling wins."""
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.casefold(), item)
    return tuple(seen.values())


def _date(value: object) -> str | None:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is None:
        return None
    return str(value).strip() or None


def _title(meta: dict, raws: list[_Raw], path: str) -> str:
    value = meta.get("title")
    if isinstance(value, (str, int, float)) and str(value).strip():
        return str(value).strip()
    h1 = next((text for raw in raws for level, text in raw.heads if level == 1 and text), None)
    return h1 or Path(path).stem


# ---------------------------------------------------------------- sections

_MARK = "\u241e"  # printable, so the splitter keeps it
_SPLITTER = MarkdownHeaderTextSplitter([("#" * n, str(n)) for n in range(1, 7)], strip_headers=True)
_CLOSING_HASHES = re.compile(r"\s+#+$")


class _Raw(NamedTuple):
    """A section before rendering: raw markdown lines and 0-based body line numbers."""

    heads: tuple[tuple[int, str], ...]  # (level, heading as plain text), top first
    line: int  # the deepest heading's line, or the first text line before any heading
    start: int  # line of lines[0]
    lines: list[str]


def _raw_sections(lines: list[str]) -> list[_Raw]:
    """The splitter decides what is a heading (it skips code fences); we need line numbers.

    Every line is tagged with '␞<n>' before splitting: a chunk's first and last lines
    then give its line range in the original, and headings carry their own line, which
    also keeps two same-named sibling headings from being merged into one chunk.
    """
    # the extra "" gives a heading on the very last line a chunk of its own
    marked = "\n".join(_marked(line, n) for n, line in enumerate([*lines, ""]))
    rendered: dict[int, str] = {}
    raws = []
    for doc in _SPLITTER.split_text(marked):
        start = _unmark(doc.page_content.split("\n", 1)[0])[1]
        end = _unmark(doc.page_content.rsplit("\n", 1)[-1])[1]
        heads = [(int(level), *_unmark(doc.metadata[level])) for level in sorted(doc.metadata)]
        for _, raw, n in heads:
            rendered.setdefault(n, _heading_text(raw))
        body = lines[start:end + 1]
        line = heads[-1][2] if heads else start + next((i for i, text in enumerate(body) if text.strip()), 0)
        titled = tuple((level, rendered[n]) for level, _, n in heads if rendered[n])
        raws.append(_Raw(titled, line, start, body))
    return raws


def _marked(line: str, n: int) -> str:
    """Only lines starting like a heading or fence need their text: the splitter's
    per-character filtering of every other line is its main cost."""
    first = line.lstrip()[:1]
    return f"{line} {_MARK}{n}" if first in ("#", "`", "~") or not first.isprintable() else f"{_MARK}{n}"


def _unmark(marked: str) -> tuple[str, int]:
    text, _, number = marked.rstrip().rpartition(_MARK)
    return text.strip(), int(number)


def _heading_text(raw: str) -> str:
    return _inline(_CLOSING_HASHES.sub("", raw)).strip()


# ---------------------------------------------------------------- plain text


def to_plain_text(markdown: str) -> str:
    """Obsidian markdown -> text for embedding and display.

    Code fence content is kept verbatim (ASCII diagrams are content), fence lines dropped.
    Links become their visible text; `![[note]]` embeds become the note's name, while
    attachment embeds (`![[x.png]]`) and images (`![alt](x)`) are dropped: file names
    and alt text are noise for search. Callouts become "Tip: Title" lines.
    """
    out: list[str] = []
    for is_code, block in _blocks(markdown.split("\n")):
        if is_code:
            out.extend(block)
        else:
            prose = map(_prose_line, _drop_comments("\n".join(block)).split("\n"))
            out.extend(line for line in prose if line is not None)
    return _tidy(out)


def _line_kinds(lines: Iterable[str]) -> Iterator[str]:
    """'fence', 'code' or 'text' per line; fence rules match MarkdownHeaderTextSplitter's."""
    fence = ""
    for line in lines:
        stripped = line.strip()
        if fence and stripped.startswith(fence):
            fence = ""
            yield "fence"
        elif not fence and (stripped.startswith("~~~") or _opens_backtick_fence(stripped)):
            fence = stripped[:3]
            yield "fence"
        else:
            yield "code" if fence else "text"


def _opens_backtick_fence(stripped: str) -> bool:
    return stripped.startswith("```") and stripped.count("```") == 1  # "```x```" is inline code


def _blocks(lines: list[str]) -> Iterator[tuple[bool, list[str]]]:
    """(is_code, lines) runs, fence lines left out."""
    run: list[str] = []
    in_code = False
    for line, kind in zip(lines, _line_kinds(lines)):
        if kind == "fence" or (kind == "code") != in_code:
            if run:
                yield in_code, run
            run, in_code = [], kind == "code"
        if kind != "fence":
            run.append(line)
    if run:
        yield in_code, run


def _drop_comments(text: str) -> str:
    return _drop_between(_drop_between(text, "<!--", "-->"), "%%", "%%")


def _drop_between(text: str, opener: str, closer: str) -> str:
    """str.find instead of a regex: an unclosed opener must not rescan the text."""
    parts, pos = [], 0
    while (start := text.find(opener, pos)) >= 0 and (end := text.find(closer, start + len(opener))) >= 0:
        parts.append(text[pos:start])
        pos = end + len(closer)
    parts.append(text[pos:])
    return "".join(parts)


_QUOTE = re.compile(r"\s*(?:>[ \t]?)+")
_CALLOUT = re.compile(r"\[!([^\]\s]+)\][+-]?\s*(.*)")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_ATTACHMENT = re.compile(
    r"\.(?:png|jpe?g|gif|bmp|svg|webp|avif|pdf|mp[34]|m4a|wav|ogg|webm|mov|excalidraw)$", re.I
)


def _prose_line(line: str) -> str | None:
    """None for lines that are only markup: rules and table separator rows."""
    quote = _QUOTE.match(line)
    if quote:
        line = line[quote.end():]
        callout = _CALLOUT.match(line)
        if callout:
            kind, title = callout[1].replace("-", " ").capitalize(), _inline(callout[2]).strip()
            return f"{kind}: {title}" if title else kind
    if _is_rule(line):
        return None
    return _inline(line)


def _is_rule(line: str) -> bool:
    """Horizontal rules and table separator rows carry no words."""
    stripped = line.strip()
    return len(stripped) >= 3 and not stripped.strip("-*_:| \t") and any(c in stripped for c in "-*_")


def _inline(text: str) -> str:
    if "`" not in text:
        return _markup(text)
    parts = _CODE_SPAN.split(text)  # odd items are code span contents: kept as is
    return "".join(part if i % 2 else _markup(part) for i, part in enumerate(parts))


def _embed(match: re.Match) -> str:
    target = match[1].split("|", 1)[0].split("#", 1)[0].strip()
    return "" if _ATTACHMENT.search(target) else _wikilink(match)


def _wikilink(match: re.Match) -> str:
    target, _, alias = match[1].partition("|")
    if alias.strip():
        return alias.strip()
    note, _, heading = target.rstrip("\\").partition("#")
    heading = "" if heading.startswith("^") else heading.replace("#", " ")  # ^block ids are not words
    return " ".join(p for p in (note.strip(), heading.strip()) if p)


_MARKUP = [  # (substring that must be present, pattern, replacement): most lines skip most patterns
    ("![", re.compile(r"!\[[^\[\]]*\]\([^()]*\)"), ""),
    ("![[", re.compile(r"!\[\[([^\[\]]+)\]\]"), _embed),
    ("[[", re.compile(r"\[\[([^\[\]]+)\]\]"), _wikilink),
    ("](", re.compile(r"\[([^\[\]]*)\]\([^()]*\)"), r"\1"),
    ("<", re.compile(r"<((?:https?|mailto):[^<>\s]+)>"), r"\1"),
    ("**", re.compile(r"\*\*([^*]+)\*\*"), r"\1"),
    ("__", re.compile(r"__([^_]+)__"), r"\1"),
    ("==", re.compile(r"==([^=]+)=="), r"\1"),
    ("~~", re.compile(r"~~([^~]+)~~"), r"\1"),
    ("*", re.compile(r"(?<![\w*])\*(?![\s*])([^*]+?)(?<!\s)\*(?![\w*])"), r"\1"),
    ("_", re.compile(r"(?<![\w_])_(?![\s_])([^_]+?)(?<!\s)_(?![\w_])"), r"\1"),
]


def _markup(text: str) -> str:
    for trigger, pattern, replacement in _MARKUP:
        if trigger in text:
            text = pattern.sub(replacement, text)
    return text


def _tidy(lines: list[str]) -> str:
    """Trailing spaces off, runs of blank lines down to one."""
    out: list[str] = []
    for line in lines:
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


# ---------------------------------------------------------------- tags

_TAG = re.compile(r"(?<!\S)#([\w/-]+)")


def _body_tags(raws: list[_Raw]) -> Iterator[str]:
    """Obsidian's rules: after whitespace, not all digits (#1 is not a tag), not in code."""
    for raw in raws:
        for is_code, block in _blocks(raw.lines) if any("#" in line for line in raw.lines) else ():
            if not is_code:
                prose = _CODE_SPAN.sub(" ", _drop_comments("\n".join(block)))
                for match in _TAG.finditer(prose):
                    tag = match[1].strip("/")
                    if any(c.isalpha() for c in tag):
                        yield tag


# ---------------------------------------------------------------- questions


class QuestionScan(NamedTuple):
    """What scan_questions found, including what it could not use."""

    questions: list[Question]
    warnings: list[str]  # one per malformed block: "question 2 (line 57): no answer line; ..."
    blocks: int  # question blocks seen, malformed ones included


def parse_questions(markdown: str, headings: Iterable[str] = ()) -> list[Question]:
    """The well-formed questions in `markdown`, numbered from 0."""
    return scan_questions(markdown, headings).questions


def scan_questions(
    markdown: str, headings: Iterable[str] = (), first_number: int = 0, first_line: int = 1
) -> QuestionScan:
    """Like parse_questions, and also says which blocks were not usable and why.

    `first_number` and `first_line` place `markdown` inside its note, so numbers and
    warning line numbers stay note-wide. A malformed block still uses up its number.
    """
    headings = tuple(headings)
    questions, warnings = [], []
    blocks = _question_blocks(markdown.split("\n")) if _QUESTION_HINT.search(markdown) else []
    for i, (start, block) in enumerate(blocks):
        found = _question(block, headings, first_number + i)
        if isinstance(found, Question):
            questions.append(found)
        else:
            where = f"question {first_number + i + 1} (line {first_line + start})"
            warnings.append(f"{where}: {found}; not used for practice")
    return QuestionScan(questions, warnings, len(blocks))


_LABEL_PREFIX = r"(?:[^\w\s()*+\-][ \t]*)*"  # emoji or ✅ before a label, but not a list bullet
_QUESTION_LABEL = re.compile(_LABEL_PREFIX + r"(?:Question|문제|Q)[ \t]*\d*[ \t]*[:：.)][ \t]*(.*)", re.I)
# a cheap superset of label lines: most sections hold no question and skip the line-by-line scan
_QUESTION_HINT = re.compile(r"^(?:[^\w\n]|__)*(?:question|문제|q)", re.I | re.M)
_OPTIONS_LABEL = re.compile(_LABEL_PREFIX + r"(?:Options|Choices|선택지|보기)[ \t]*[:：]?", re.I)
_ANSWER_LABEL = re.compile(
    r"(?:[-*+][ \t]+)?" + _LABEL_PREFIX
    + r"(?:정답|답|Correct[ \t]+answers?|Answers?|Correct)[ \t]*[:：][ \t]*(.*)",
    re.I,
)
_EXPLANATION_LABEL = re.compile(
    _LABEL_PREFIX + r"(?:추가[ \t]*설명|해설|풀이|Explanations?)[ \t]*(?:[:：][ \t]*(.*))?", re.I
)
_OPTION = re.compile(r"(?:[-*+][ \t]+)?(?:\(([A-H])\)|([A-H])[.)])[ \t]+(\S.*)")
_BULLET = re.compile(r"([ \t]*)[-*+][ \t]+(.*)")
_BOLD_MARKS = re.compile(r"\*\*|__")
_THEMATIC_BREAK = re.compile(r"[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*")


def _question_blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """A block runs from a question label to the next label, a thematic break or the end."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    for n, (line, kind) in enumerate(zip(lines, _line_kinds(lines))):
        if kind == "text" and _QUESTION_LABEL.fullmatch(_normalized(line)):
            current = []
            blocks.append((n, current))
        elif kind == "text" and _THEMATIC_BREAK.fullmatch(line):
            current = None
        if current is not None:
            current.append(line)
    return blocks


def _normalized(line: str) -> str:
    """Labels hide behind bold markers and callout '>' quotes."""
    quote = _QUOTE.match(line)
    return _BOLD_MARKS.sub("", line[quote.end():] if quote else line).strip()


class _Parts(NamedTuple):
    stem: list[str]
    options: dict[str, str]
    answer: list[str]  # the answer line's value, if any
    explanation: list[str]


def _question(block: list[str], headings: tuple[str, ...], number: int) -> Question | str:
    """A Question, or why the block is not one."""
    parts = _split_block(block)
    options = {k: v for k, v in parts.options.items() if v}
    stem = to_plain_text("\n".join(parts.stem))
    if not stem:
        return "no question text"
    if len(options) < 2:
        return "only one option" if options else "no options"
    if not parts.answer:
        return "no answer line"
    letters = _answer_letters(parts.answer[0], options)
    if not letters:
        return f"answer {parts.answer[0].strip()!r} matches no option"
    if not set(letters) <= set(options):
        return f"answer {', '.join(letters)} is not among the options {', '.join(options)}"
    return Question(
        stem=stem,
        options=options,
        answer=letters,
        explanations=_explanations(parts.explanation, options),
        explanation=to_plain_text("\n".join(parts.explanation)),
        headings=headings,
        number=number,
    )


def _split_block(block: list[str]) -> _Parts:
    """One pass: stem, then options, then the answer and explanation in either order."""
    parts = _Parts([_QUESTION_LABEL.fullmatch(_normalized(block[0]))[1]], {}, [], [])
    state, last = "stem", ""
    for line in block[1:]:
        norm = _normalized(line)
        if state == "answer below" and norm:  # "**정답:**" alone, the answer on the next line
            parts.answer[0], state = norm, "answered"
            continue
        if state in ("stem", "options"):
            if _OPTIONS_LABEL.fullmatch(norm):
                state = "options"
                continue
            if option := _OPTION.fullmatch(norm):
                last = option[1] or option[2]
                parts.options.setdefault(last, to_plain_text(option[3]))
                state = "options"
                continue
        answer = None if parts.answer else _ANSWER_LABEL.fullmatch(norm)
        explanation = None if state == "explanation" else _EXPLANATION_LABEL.fullmatch(norm)
        if answer:
            parts.answer.append(answer[1])
            if state != "explanation":
                state = "answered" if answer[1].strip() else "answer below"
        elif explanation:
            parts.explanation.append(explanation[1] or "")
            state = "explanation"
        elif state in ("answered", "explanation"):
            parts.explanation.append(line)
        elif state == "options" and last and norm and line[:1].isspace():
            parts.options[last] = f"{parts.options[last]} {to_plain_text(norm)}"
        elif state == "options" and not last and (bullet := _BULLET.fullmatch(norm)):
            parts.options[chr(ord("A") + len(parts.options))] = to_plain_text(bullet[2])  # unlettered list
        else:
            parts.stem.append(line)
    return parts


_ANSWER_MARK = re.compile(r"(?<![^\s,;/&(])\(?([A-H])[).](?=\s|$)")
_ANSWER_SEPARATORS = re.compile(r"[\s,;/&+]+|\b(?:and|or)\b|및|(?<=[A-H)])[와과]")
_LEADING_LETTER = re.compile(r"\(?([A-H])\)?(?![\w'’])")


def _answer_letters(raw: str, options: dict[str, str]) -> tuple[str, ...]:
    """'A) Amazon S3, C) Amazon EMR', 'A, C', 'A and C', 'Amazon S3', 'B because ...'."""
    value = to_plain_text(raw).strip().rstrip(".")
    letters = [m[1] for m in _ANSWER_MARK.finditer(value)]
    if not letters:
        tokens = [t for t in (t.strip("().[]") for t in _ANSWER_SEPARATORS.split(value)) if t]
        if tokens and all(len(t) == 1 and "A" <= t <= "H" for t in tokens):
            letters = tokens
    if not letters:
        letters = _options_named_in(value, options)
    if not letters and (leading := _LEADING_LETTER.match(value)):
        letters = [leading[1]]
    return tuple(sorted(set(letters)))


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def _options_named_in(text: str, options: dict[str, str]) -> list[str]:
    """Longest option texts first, so 'Amazon S3 Glacier' is not also read as 'Amazon S3'."""
    text, found = _key(text), []
    for letter, option in sorted(options.items(), key=lambda item: -len(item[1])):
        name = _key(option)
        at = _find_name(text, name)
        if at >= 0:
            found.append(letter)
            text = text[:at] + "\x00" * len(name) + text[at + len(name):]
    return found


def _find_name(text: str, name: str) -> int:
    """First occurrence of `name` not glued to Latin letters or digits on either side."""
    at = text.find(name) if name else -1
    while at >= 0:
        if not _latin_alnum(text[at - 1:at]) and not _latin_alnum(text[at + len(name):at + len(name) + 1]):
            return at
        at = text.find(name, at + 1)
    return -1


def _latin_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _explanations(lines: list[str], options: dict[str, str]) -> dict[str, str]:
    """Bullets naming an option ('- **AWS Glue** - why', '- B) why') explain that option;
    deeper-indented lines under such a bullet belong to it too."""
    found: dict[str, list[str]] = {}
    letter, indent = "", 0
    for line in lines:
        bullet = _BULLET.fullmatch(line)
        depth = len(line) - len(line.lstrip())
        if bullet and (named := _explained_option(bullet[2], options)):
            letter, indent = named[0], depth
            found.setdefault(letter, []).append(named[1])
        elif letter and line.strip() and depth > indent:
            found[letter].append(to_plain_text(bullet[2] if bullet else line.strip()))
        elif line.strip():
            letter = ""
    joined = {k: " ".join(p for p in v if p) for k, v in found.items()}
    return {k: v for k, v in joined.items() if v}


_LEAD_BOLD = re.compile(r"[^\w*]*(?:\*\*|__)([^*_]+)(?:\*\*|__)(.*)")
_LEAD_SYMBOLS = re.compile(r"[^\w(]+")
_EXPLAINED_LETTER = re.compile(r"(?:\(([A-H])\)|([A-H])[ \t]*[).:：\-–—])[ \t]*(.*)")
_SEPARATOR = re.compile(r"[ \t]*[-–—:：]+[ \t]*")


def _explained_option(text: str, options: dict[str, str]) -> tuple[str, str] | None:
    """(letter, explanation) if the bullet starts by naming an option, by letter or by text."""
    plain = to_plain_text(text)
    symbols = _LEAD_SYMBOLS.match(plain)  # ✅ ❌ →
    plain = plain[symbols.end():] if symbols else plain
    bold = _LEAD_BOLD.fullmatch(text)
    if bold and (letter := _option_called(bold[1], options)):
        return letter, _reason(plain, to_plain_text(bold[2]))
    by_letter = _EXPLAINED_LETTER.fullmatch(plain)
    if by_letter and (letter := by_letter[1] or by_letter[2]) in options:
        rest = by_letter[3]
        return letter, _reason(rest, rest[_name_end(rest, options[letter]):])
    for letter, option in sorted(options.items(), key=lambda item: -len(item[1])):
        if end := _name_end(plain, option):
            return letter, _reason(plain, plain[end:])
    return None


def _reason(whole: str, after_name: str) -> str:
    """'AWS Glue - why' -> 'why', but 'AWS Glue는 why' stays whole: the name is part of the sentence."""
    separator = _SEPARATOR.match(after_name)
    if separator:
        return after_name[separator.end():].strip()
    return whole.strip() if after_name.strip() else ""


def _option_called(name: str, options: dict[str, str]) -> str | None:
    """A bold name means the option with that text, the only one containing it, or a letter."""
    name = _key(to_plain_text(name)).strip("()[].:： ")
    if len(name) == 1 and name.upper() in options:
        return name.upper()
    exact = [k for k, v in options.items() if _key(v) == name]
    partial = [k for k, v in options.items() if len(name) >= 3 and (name in _key(v) or _key(v) in name)]
    for matches in (exact, partial):
        if len(matches) == 1:
            return matches[0]
    return None


def _name_end(text: str, name: str) -> int:
    """Where `name` ends if `text` starts with it as a whole name ('AWS Glue - …', 'AWS Glue는 …'
    but not 'AWS Glue DataBrew'); 0 if it does not."""
    words = name.split()
    match = re.match(r"\s+".join(map(re.escape, words)), text, re.I) if words else None
    if not match:
        return 0
    following = text[match.end():].lstrip()[:1]
    return 0 if following and _latin_alnum(following) else match.end()
