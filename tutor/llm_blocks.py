"""Source blocks read once and reused in any prompt, at any place (llama.cpp only).

On a CPU the answer waits on the model reading its prompt, and most of the prompt is the
note sections it cites, which come back from question to question. A block is read once,
on its own after the fixed start of the answer prompt (system prompt and "Sources: [1]"),
and its keys and values kept on disk; a later prompt that holds the same tokens anywhere
gets them copied into its KV cache and moved to their place (llama.cpp rotates the keys to
the new positions), so only the tokens between blocks and the question are read.

The blocks of one prompt then do not see each other, only the fixed start: "parallel
context encoding" (Block-Attention, TurboRAG). Unlike everything else the engine reuses, this
changes the answers, and measurably for the worse with the default 1.5B model (fewer answers
cite their sources), so it is off unless ``TUTOR_BLOCKS=1`` or ticked in the UI: a choice of
speed over answers for slow CPUs.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
from collections import OrderedDict
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KEY = 4  # tokens a block is looked up by
MIN_TOKENS = 24  # shorter matches are read: a copy and a move cost about as much
# The first tokens of each copied block (its "[n] heading" line) are read in the prompt instead,
# where they see the sources before them. Copying all of it cost citations: 51 of 64 held-out
# answers grounded against 57 reading everything; re-reading 12 tokens, 56 (first token
# 1.83 -> 2.58 s p50 on a 2-core AVX2 CPU, against 8.6 s).
REREAD = 12
SPARE_SEQ = 1  # the KV cache sequence a block is loaded into before it is moved
MEMORY_BYTES = 128 << 20  # blocks kept in RAM as well as on disk
DISK_MB = 2048  # 28 KB a token for Qwen2.5-1.5B: the starter vault's 440 chunks take 1.8 GB


def enabled() -> bool:
    """$TUTOR_BLOCKS when set, else the UI's "read notes ahead" choice (off unless ticked)."""
    value = os.environ.get("TUTOR_BLOCKS")
    if value is None:
        from tutor import settings

        return settings.get("blocks") is True
    return value.strip().lower() in ("1", "true", "yes", "on")


def chosen_by_env() -> bool:
    return os.environ.get("TUTOR_BLOCKS") is not None


def disk_bytes() -> int:
    from tutor.llm import env_count

    mb = env_count("TUTOR_BLOCKS_MB")
    return (DISK_MB if mb is None else mb) << 20


class Blocks:
    """Blocks read after ``prefix`` (prompt tokens), for prompts that begin with ``start``,
    as files under ``folder`` (at most ``max_bytes``, the least recently used go first)."""

    def __init__(self, start: list[int], prefix: list[int], folder: Path, max_bytes: int | None = None):
        self.start, self.prefix, self.folder = tuple(start), tuple(prefix), folder
        self.max_bytes = disk_bytes() if max_bytes is None else max_bytes
        self.keys: dict[tuple[int, ...], list[tuple[int, ...]]] = {}  # first KEY tokens -> blocks
        self.sizes: dict[tuple[int, ...], int] = {}
        self.states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.glob("*.kv"), key=_mtime):
            try:  # the tokens file: the state's size, then the block's tokens
                size, *block = (int(t) for t in path.with_suffix(".tokens").read_text().split())
            except (OSError, ValueError):  # half-written by a crash: read again when needed
                path.unlink(missing_ok=True)
                continue
            if block and self._file(tuple(block)) == path:
                self._know(tuple(block), size)
        for path in folder.glob("*.tmp"):
            path.unlink(missing_ok=True)

    def __contains__(self, block: tuple[int, ...]) -> bool:
        return block in self.sizes

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def bytes(self) -> int:
        return sum(self.sizes.values())

    @property
    def full(self) -> bool:
        """Reading more would push out blocks already read: time to stop reading ahead."""
        return self.bytes > 0.9 * self.max_bytes

    def _know(self, block: tuple[int, ...], size: int) -> None:
        self.keys.setdefault(block[:KEY], []).append(block)
        self.sizes[block] = size

    def keep_only(self, wanted: set[tuple[int, ...]]) -> int:
        """Forget every block not in ``wanted``; returns how many."""
        stale = [block for block in self.sizes if block not in wanted]
        for block in stale:
            self.forget(block)
        return len(stale)

    def forget(self, block: tuple[int, ...]) -> None:
        if block not in self.sizes:
            return
        self.keys[block[:KEY]].remove(block)
        del self.sizes[block]
        self.states.pop(block, None)
        for suffix in (".kv", ".tokens"):
            self._file(block).with_suffix(suffix).unlink(missing_ok=True)

    def _file(self, block: tuple[int, ...]) -> Path:
        return self.folder / (hashlib.sha256(" ".join(map(str, block)).encode()).hexdigest()[:32] + ".kv")

    def add(self, block: tuple[int, ...], state: bytes) -> None:
        """Keep a block: the tokens file is written last, so a crash leaves no block that
        names the wrong keys and values (a .kv without its .tokens is removed on load)."""
        if block in self or len(state) > self.max_bytes:
            return
        while self.sizes and self.bytes + len(state) > self.max_bytes:
            self.forget(next(iter(self.sizes)))  # least recently used
        path = self._file(block)
        self.folder.mkdir(parents=True, exist_ok=True)  # `tutor warm --clear` may have run meanwhile
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(state)
        tmp.replace(path)
        path.with_suffix(".tokens").write_text(" ".join(map(str, (len(state), *block))))
        self._know(block, len(state))
        self._keep(block, state)

    def _keep(self, block: tuple[int, ...], state: bytes) -> None:
        self.states[block] = state
        self.states.move_to_end(block)
        while len(self.states) > 1 and sum(map(len, self.states.values())) > MEMORY_BYTES:
            self.states.popitem(last=False)

    def state(self, block: tuple[int, ...]) -> bytes | None:
        """A block's keys and values, None if its file is gone or short (then forgotten)."""
        state = self.states.get(block)
        if state is None:
            path = self._file(block)
            try:
                state = path.read_bytes()
            except OSError:
                state = b""
            if len(state) != self.sizes[block]:
                log.info("Cached block %s is missing or cut short; it will be read again", path.name)
                self.forget(block)
                return None
            os.utime(path)
        self._keep(block, state)
        self.sizes[block] = self.sizes.pop(block)  # most recently used last
        return state

    def longest(self, tokens: list[int], at: int) -> tuple[tuple[int, ...] | None, int]:
        """The known block sharing the longest start with ``tokens[at:]``, and its length."""
        best, best_n = None, 0
        for block in self.keys.get(tuple(tokens[at:at + KEY]), ()):
            n = common_prefix(block, tokens[at:at + len(block)])
            if n > best_n:
                best, best_n = block, n
        return best, best_n

    def found(self, tokens: list[int]) -> list[tuple[int, tuple[int, ...], int]]:
        """(where, block, how many of its tokens) for the blocks in ``tokens``."""
        if tuple(tokens[:len(self.start)]) != self.start:
            return []
        hits, i = [], len(self.start)
        while i + KEY <= len(tokens):
            block, n = self.longest(tokens, i)
            if n >= MIN_TOKENS:
                hits.append((i, block, n))
                i += n
            else:
                i += 1
        return hits


def vault_folder(vault: Path) -> Path:
    """Where the blocks read from one vault's sections go (one folder per model and prompt
    start in it), so dropping those of edited sections never touches another vault's."""
    from index.home import index_dir, tutor_home

    return tutor_home() / "blocks" / index_dir(vault).name


def folder_for(model: Path, start: list[int], prefix: list[int], vault: Path) -> Path:
    """A changed system prompt or model never meets the blocks of another."""
    stat = model.stat()
    key = f"{model.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{start}:{prefix}"
    return vault_folder(vault) / hashlib.sha256(key.encode()).hexdigest()[:16]


def clear(vault: Path) -> tuple[int, int]:
    """Delete every block kept for ``vault``, for every model: (how many, bytes freed)."""
    folder = vault_folder(vault)
    files = [path for path in folder.rglob("*") if path.is_file()]
    count, size = sum(path.suffix == ".kv" for path in files), sum(_size(path) for path in files)
    shutil.rmtree(folder, ignore_errors=True)
    return count, size


def movable(llama: Any) -> bool:
    """Whether this model's KV cache can move keys to new positions (llama.cpp aborts the
    process when asked to move what it cannot, e.g. multi-position RoPE)."""
    import llama_cpp

    mem = llama._ctx.memory
    return mem is not None and bool(llama_cpp.llama_memory_can_shift(mem))


def export(llama: Any, start: int, end: int) -> bytes:
    """The keys and values of positions [start, end) of the prompt in the KV cache."""
    import llama_cpp

    ctx, mem = llama._ctx.ctx, llama._ctx.memory
    llama_cpp.llama_memory_seq_cp(mem, 0, SPARE_SEQ, start, end)
    try:
        size = llama_cpp.llama_state_seq_get_size(ctx, SPARE_SEQ)
        data = (ctypes.c_uint8 * int(size))()
        return ctypes.string_at(data, llama_cpp.llama_state_seq_get_data(ctx, data, size, SPARE_SEQ))
    finally:
        llama_cpp.llama_memory_seq_rm(mem, SPARE_SEQ, -1, -1)


def place(llama: Any, state: bytes, origin: int, at: int, n: int, skip: int = 0) -> bool:
    """Put tokens ``skip`` to ``n`` of a block read at ``origin`` into the prompt at ``at``
    (the KV cache holds the prompt up to ``at + skip``); False if llama.cpp refused the state
    (nothing is placed then)."""
    import llama_cpp

    ctx, mem = llama._ctx.ctx, llama._ctx.memory
    llama_cpp.llama_memory_seq_rm(mem, 0, at + skip, -1)
    buf = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
    try:
        if not llama_cpp.llama_state_seq_set_data(ctx, buf, len(state), SPARE_SEQ):
            return False
        llama_cpp.llama_memory_seq_rm(mem, SPARE_SEQ, origin + n, -1)
        if skip:
            llama_cpp.llama_memory_seq_rm(mem, SPARE_SEQ, origin, origin + skip)
        if at != origin:
            llama_cpp.llama_memory_seq_add(mem, SPARE_SEQ, origin + skip, origin + n, at - origin)
        llama_cpp.llama_memory_seq_cp(mem, SPARE_SEQ, 0, at + skip, at + n)
        return True
    finally:
        llama_cpp.llama_memory_seq_rm(mem, SPARE_SEQ, -1, -1)


def common_prefix(a: Any, b: Any) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
