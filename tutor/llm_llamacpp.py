"""The embedded backend: a thin LangChain chat model over llama-cpp-python.

Imported lazily by ``tutor.llm.get_chat_model``. Why not langchain-community's
ChatLlamaCpp: it has no lock (one ``Llama`` must not serve two requests at once, and a
web UI will try), its structured output goes through tool calling instead of a JSON-schema
grammar, it loads the model again for every instance, and its token counting falls back to
downloading GPT-2's tokenizer. This class keeps one loaded ``Llama`` per (file, settings),
serialises calls to it, streams, and keeps the prompt prefix cached between turns.

Prefix caching, two layers:
* llama.cpp keeps the KV cache of the previous call, and llama-cpp-python reuses its
  longest common token prefix, so with a fixed system prompt each turn only evaluates
  the new tokens, as long as nothing else ran on the model in between. Always on.
* ``prefill(system_prompt)`` evaluates a fixed prefix ahead of time and, with
  ``prefix_cache=True`` (the default), pins its state in RAM. When a later prompt starts
  with a pinned prefix but the KV cache holds something else (a quiz generator with its
  own system prompt ran in between), the pinned state is restored instead of evaluating
  the prefix again. llama-cpp-python's own ``LlamaRAMCache`` is not used: it saves a
  state after *every* completion, copying the whole logits buffer (n_batch x 152k vocab
  floats = 311 MB for Qwen) each time - 0.16-1 s per turn measured on a busy 2-core
  machine - and does not count those copies against its capacity.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from contextlib import closing
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from tutor import llm_blocks
from tutor.llm import LLAMA_CPP_PIN, LLMError, env_count
from tutor.llm_blocks import common_prefix
from tutor.llm_draft import DRAFT_TOKENS

DEFAULT_CACHE_BYTES = 1 << 30
log = logging.getLogger(__name__)


def _import_llama_cpp():
    try:
        import llama_cpp
    except ImportError as e:
        raise LLMError(
            "The embedded model needs llama-cpp-python, which is not installed (or did not "
            "build). Run 'bash scripts/build_llama.sh', or (GCC miscompiles ggml's AMX code "
            "without the -fno-dse flags): CMAKE_ARGS=\"-DLLAVA_BUILD=OFF "
            "-DCMAKE_C_FLAGS='-fno-dse -fno-tree-dse' -DCMAKE_CXX_FLAGS='-fno-dse -fno-tree-dse'\" "
            f"python -m pip install --no-cache-dir {LLAMA_CPP_PIN}  "
            "- or use a running Ollama with --llm ollama:MODEL") from e
    return llama_cpp


class _Engine:
    """One loaded ``Llama``, the lock that serialises its use, and its pinned prefixes."""

    def __init__(self, llama: Any, path: Path, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 grid: int = 0):
        self.llama = llama
        self.path = path
        # A plain Lock, not an RLock: LangChain's async streaming (and Gradio) advance a
        # sync generator from different worker threads, so the thread that releases the
        # lock at the end of a stream is often not the one that took it.
        self.lock = threading.Lock()
        self.load_seconds = 0.0
        self.cache_bytes = cache_bytes
        self.pins: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self.restores = 0
        self._formatter: Any = None
        # Prompts are read in batches that start on multiples of ``grid`` and are at least
        # that long, so their numbers equal one pass over the whole prompt (0: no such grid
        # here, and reading ahead may change an answer slightly). ``steady`` tokens at the
        # front of the KV cache were read that way; generated tokens after them were not.
        self.grid = grid
        self.steady = 0
        self.blocks: Any = None  # tutor.llm_blocks.Blocks, once use_blocks named their prompt

    # All methods below expect the caller to hold ``self.lock``.
    def prompt_tokens(self, payload: list[dict[str, str]]) -> list[int]:
        """The tokens create_chat_completion will evaluate for ``payload`` (same template
        and tokenizer call as llama-cpp-python's GGUF-template chat handler)."""
        if self._formatter is None:
            from llama_cpp import llama_chat_format

            llama = self.llama
            template = llama.metadata.get("tokenizer.chat_template")
            if not template:
                raise LookupError("no chat template in the GGUF")

            def text(tok: int) -> str:
                return llama.detokenize([tok], special=True).decode("utf-8", "ignore") if tok >= 0 else ""

            self._formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template, eos_token=text(llama.token_eos()),
                bos_token=text(llama.token_bos()), stop_token_ids=[llama.token_eos()])
        result = self._formatter(messages=payload)
        return self.llama.tokenize(result.prompt.encode("utf-8"),
                                   add_bos=not result.added_special, special=True)

    def open_prompt_tokens(self, payload: list[dict[str, str]]) -> list[int]:
        """The tokens every prompt that continues ``payload``'s last message shares: the
        template's closing of that message and the last token or two, which more text may
        merge into other tokens, are not among them."""
        more = [*payload[:-1], {**payload[-1], "content": payload[-1]["content"] + "x"}]
        tokens = self.prompt_tokens(payload)
        return tokens[: common_prefix(tokens, self.prompt_tokens(more))]

    def pin_current(self) -> None:
        """Remember the current KV state (what the last call evaluated) as a prefix."""
        llama = self.llama
        key = tuple(int(t) for t in llama.input_ids[: llama.n_tokens])
        if not key or key in self.pins:
            return
        self.pins[key] = _snapshot(llama)
        while len(self.pins) > 1 and (
                len(self.pins) > MAX_PINS
                or sum(p.llama_state_size for p in self.pins.values()) > self.cache_bytes):
            self.pins.popitem(last=False)

    def restore_prefix(self, tokens: list[int]) -> bool:
        """Load a pinned state if it covers much more of this prompt than the KV cache."""
        if not self.pins:
            return False
        llama = self.llama
        have = common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        best_key, best = None, 0
        for key in self.pins:
            n = common_prefix(key, tokens)
            if n > best:
                best_key, best = key, n
        if best_key is None or best < have + MIN_RESTORE_GAIN:
            return False
        self.pins.move_to_end(best_key)
        llama.load_state(self.pins[best_key])
        self.steady = llama.n_tokens  # pins are prompts ``ready`` read on the grid
        self.restores += 1
        return True

    def settle(self, tokens: list[int], end: int, step: int = 0,
               stop: Callable[[], bool] = lambda: False) -> int:
        """Have the KV cache hold ``tokens`` up to the last grid line at or before ``end``, read
        on the grid in batches of ``step`` tokens (default ``n_batch``) until ``stop()``;
        returns how many it holds. What it holds already is kept back to the last grid line
        it shares."""
        llama, g = self.llama, self.grid or 1
        end = max(0, min(end, llama.n_ctx() - 1)) // g * g  # past the context llama.cpp would fail
        shared = common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        llama.n_tokens = min(shared, self.steady, end) // g * g if self.grid else min(shared, end)
        step = max(g, (step or llama.n_batch) // g * g)
        while llama.n_tokens < end and not stop():
            llama.eval(tokens[llama.n_tokens: min(end, llama.n_tokens + step)])
            self.steady = llama.n_tokens
        return llama.n_tokens

    def splice(self, tokens: list[int]) -> int:
        """Copy the cached blocks found in ``tokens`` into the KV cache at their places,
        reading the tokens between them and the first ``REREAD`` of each; returns how many
        tokens were copied."""
        llama, blocks = self.llama, self.blocks
        if blocks is None or not llm_blocks.enabled() or len(tokens) > llama.n_ctx():
            return 0
        have = common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        # A block the KV cache holds the start of is copied whole when most of it is missing
        # (the last prompt's first source began with the same word), else the rest is read:
        # what a pre-read read exactly stays.
        found = [hit for hit in blocks.found(tokens) if hit[0] + hit[2] - have >= llm_blocks.MIN_TOKENS]
        if not found:
            return 0
        llama.n_tokens, copied = min(have, found[0][0]), 0
        skip = llm_blocks.REREAD
        for at, block, n in found:
            if llama.n_tokens < at + skip:
                llama.eval(tokens[llama.n_tokens: at + skip])
            state = blocks.state(block)
            if state is None or not llm_blocks.place(llama, state, len(blocks.prefix), at, n, skip):
                break  # the rest is read as usual
            llama.input_ids[at: at + n] = tokens[at: at + n]
            llama.n_tokens = at + n
            copied += n - skip
        self.steady = llama.n_tokens
        return copied

    def ready(self, tokens: list[int], stop: Callable[[], bool] | None = None) -> None:
        """Read a prompt up to the grid line that leaves the tail for llama-cpp-python to
        read and sample from: one batch of at least ``grid`` tokens, and longer than a
        draft check, which would ask every row for logits and so change the last one's.
        With ``stop``, in small batches until it says stop (the tail is then not read)."""
        if not self.grid or len(tokens) > self.llama.n_ctx():
            return  # too long: llama-cpp-python says so, in words _map_error passes on
        draft = self.llama.draft_model
        end = len(tokens) - max(self.grid, 2 + (draft.max_tokens if draft else 0))
        self.settle(tokens, end, PREREAD_BATCH if stop else 0, stop or (lambda: False))
        if not (stop and stop()):  # stops only go on: a stopped read stays stopped
            self.steady = len(tokens)  # the tail is read next, in one batch on the grid

MAX_PINS = 4
MIN_RESTORE_GAIN = 32  # tokens: below that, evaluating is as cheap as restoring
# Tokens a pre-read evaluates between looks at whether to stop: a question asked mid-batch
# searches on a CPU the batch still holds. 16 tokens take about 0.4 s on a 2-core AVX2 EPYC
# (32: 0.8 s); typed at 3 keys/s, time to sources p50 / p95 0.18 / 0.56 s against 0.47 / 0.80.
PREREAD_BATCH = 16


def _snapshot(llama: Any) -> Any:
    """``llama.save_state()`` without its copy of every prompt row's logits (n_tokens x 152k
    floats: 600 MB for a 1,000-token prompt, for a moment). A restored state is re-evaluated
    from its last token before sampling (load_state sets _requires_eval), so those logits are
    never read; one row keeps load_state's broadcast assignment valid."""
    import ctypes

    from llama_cpp import llama_state_get_data, llama_state_get_size
    from llama_cpp.llama import LlamaState

    size = llama_state_get_size(llama._ctx.ctx)
    data = (ctypes.c_uint8 * int(size))()
    n_bytes = int(llama_state_get_data(llama._ctx.ctx, data, size))
    if n_bytes > int(size):
        raise RuntimeError("Failed to copy llama state data")
    return LlamaState(input_ids=llama.input_ids.copy(), scores=llama._scores[-1:].copy(),
                      n_tokens=llama.n_tokens, llama_state=ctypes.string_at(data, n_bytes),
                      llama_state_size=n_bytes, seed=llama._seed)


_ENGINES: dict[tuple, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def default_threads() -> int:
    """$TUTOR_LLM_THREADS, else every CPU this process may use.

    On an otherwise idle machine all cores is fastest. When other CPU-heavy work runs at
    the same time, llama.cpp's spinning thread barriers collapse: on a 2-core machine at
    load ~10, generation ran at 0.7 tok/s with 2 threads and 7.3 tok/s with 1.
    """
    if threads := env_count("TUTOR_LLM_THREADS"):
        return threads
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_draft_tokens() -> int | None:
    """$TUTOR_LLM_DRAFT_TOKENS (0 turns speculative decoding off), else None: ``DRAFT_TOKENS``
    where ``drafts_pay``."""
    return env_count("TUTOR_LLM_DRAFT_TOKENS")


# Whether guesses pay is a property of the CPU: a batch of 9 cost 2.1 single steps on a Xeon
# (chat 1.33x faster with drafts) and 7.9 on an EPYC (0.76x). A drafted chat step keeps about
# two guesses, so the batch must cost at most three steps.
DRAFT_MAX_COST = 3.0
TIMINGS = "timings.json"  # in $TUTOR_HOME/models: what was measured of this CPU and model


def drafts_pay(llama: Any, path: Path, n_threads: int) -> bool:
    """Whether context drafts speed this model up here, timed once (about 0.75 s)."""
    cost = _measured("draft", path, n_threads, lambda: round(llama.batch_cost(1 + DRAFT_TOKENS), 2))
    log.info("A batch of %d tokens costs %.1f single steps here: drafts %s", 1 + DRAFT_TOKENS,
             cost, "on" if cost <= DRAFT_MAX_COST else "off")
    return cost <= DRAFT_MAX_COST


def steady_grid(llama: Any, path: Path, n_threads: int) -> int:
    """The batch grid that makes a prompt's numbers independent of how it was read in pieces
    (``Llama.steady_grid``; 0: none found on this CPU), found once (a second or two)."""
    grid = int(_measured("grid", path, n_threads, llama.steady_grid))
    log.info("Prompts read in pieces on a grid of %s tokens", grid or "no")
    return grid


def _measured(kind: str, path: Path, n_threads: int, measure: Callable[[], float]) -> float:
    """``measure()`` once per CPU, thread count, model file and llama.cpp build, then read
    back, so a load does not pay for it again."""
    import llama_cpp

    from index.home import models_dir

    key = "|".join([_cpu_name(), str(n_threads), path.name, str(path.stat().st_size),
                    llama_cpp.__version__, kind])
    file = models_dir() / TIMINGS
    try:
        known = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if not isinstance(known.get(key), (int, float)):  # new here, or a damaged file
        known[key] = measure()
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            partial = file.with_name(f".{file.name}.{os.getpid()}")
            partial.write_text(json.dumps(known, indent=1), encoding="utf-8")
            partial.replace(file)
        except OSError as e:  # a read-only home costs the measuring again next load, nothing else
            log.info("Could not remember the %s measurement in %s: %s", kind, file, e)
    return known[key]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def get_engine(path: Path, n_ctx: int = 4096, n_threads: int | None = None,
               n_batch: int = 512, cache_bytes: int = DEFAULT_CACHE_BYTES,
               draft_tokens: int | None = None) -> _Engine:
    """Load (once per process and settings) the GGUF at ``path``. Chat models that differ
    only in sampling settings share one engine (and its 1-2 GB of memory)."""
    path = Path(path).resolve()
    n_threads = n_threads or default_threads()
    draft_tokens = default_draft_tokens() if draft_tokens is None else draft_tokens
    key = (str(path), n_ctx, n_threads, n_batch, draft_tokens)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is not None:
            return engine
        if not path.is_file():
            raise LLMError(f"No GGUF model file at {path}.")
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                raise LLMError(f"{path} is not a GGUF model file (llama.cpp reads only GGUF).")
        _import_llama_cpp()
        from tutor.llm_llama import Llama

        t0 = time.perf_counter()
        try:
            llama = Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=n_threads,
                n_threads_batch=n_threads, n_batch=n_batch, n_gpu_layers=0, verbose=False,
                draft_tokens=draft_tokens or 0)
        except Exception as e:  # llama_cpp raises ValueError with little detail
            raise LLMError(f"llama.cpp could not load {path}: {e}. Is it a complete GGUF "
                           "file of a model architecture llama.cpp supports?") from e
        if draft_tokens is None and drafts_pay(llama, path, n_threads):
            llama.draft(DRAFT_TOKENS)
        engine = _Engine(llama, path, cache_bytes, steady_grid(llama, path, n_threads))
        engine.load_seconds = time.perf_counter() - t0
        _ENGINES[key] = engine
        return engine


def unload_models() -> None:
    """Forget the loaded models (their memory is freed once no chat model refers to them)."""
    with _ENGINES_LOCK:
        _ENGINES.clear()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    out = []
    for block in content or []:
        if isinstance(block, str):
            out.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            out.append(block.get("text", ""))
    return "".join(out)


def _to_dict(message: BaseMessage) -> dict[str, str]:
    if isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, AIMessage):
        role = "assistant"
    elif isinstance(message, ToolMessage):
        role = "tool"
    elif isinstance(message, ChatMessage):
        role = message.role
    else:
        raise LLMError(f"Cannot send a {type(message).__name__} to the local model.")
    return {"role": role, "content": _text(message.content)}


def _map_error(e: Exception, n_ctx: int) -> Exception:
    msg = str(e)
    if "exceed context window" in msg:
        return LLMError(f"The prompt is too long for the model's context ({msg}). Ask a "
                        f"shorter question, start a new chat, or raise n_ctx (now {n_ctx}).")
    return e


class LlamaCppChat(BaseChatModel):
    """Chat with a local GGUF through llama-cpp-python's ``create_chat_completion``.

    The chat template comes from the GGUF. Extra keyword arguments to ``invoke``/``stream``
    or ``.bind(...)`` (e.g. ``response_format``, ``grammar``) go to
    ``create_chat_completion``.
    """

    _tutor_backend: ClassVar[str] = "llamacpp"

    model_path: str
    n_ctx: int = 4096
    n_threads: int | None = None
    n_batch: int = 512
    prefix_cache: bool = True
    cache_bytes: int = DEFAULT_CACHE_BYTES
    draft_tokens: int | None = None  # context drafts: 0 off, None where this CPU checks them cheaply
    temperature: float = 0.2
    max_tokens: int | None = 512
    top_p: float = 0.9
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.05
    seed: int | None = None
    stop: list[str] | None = None

    _engine: _Engine = PrivateAttr()

    def model_post_init(self, __context: Any) -> None:
        self._engine = get_engine(Path(self.model_path), self.n_ctx, self.n_threads,
                                  self.n_batch, self.cache_bytes, self.draft_tokens)

    @property
    def _llm_type(self) -> str:
        return "tutor-llamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, **self._params()}

    @property
    def load_seconds(self) -> float:
        return self._engine.load_seconds

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` (hold ``self.lock`` while using it)."""
        return self._engine.llama

    @property
    def lock(self) -> threading.Lock:
        return self._engine.lock

    def _params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": self.temperature, "max_tokens": self.max_tokens,
            "top_p": self.top_p, "top_k": self.top_k, "min_p": self.min_p,
            "repeat_penalty": self.repeat_penalty, "seed": self.seed,
            "stop": stop if stop is not None else (self.stop or []),
        }
        params.update(kwargs)
        return params

    def _ready(self, payload: list[dict[str, str]], stop: Callable[[], bool] | None = None) -> None:
        """Before llama-cpp-python reads ``payload``: a pinned prefix restored, the prompt
        read on the grid (its tokens computed once for both), until ``stop()``."""
        engine = self._engine
        if not (self.prefix_cache and engine.pins) and not engine.grid and engine.blocks is None:
            return
        try:
            tokens = engine.prompt_tokens(payload)
        except Exception:  # an odd template: llama-cpp-python's own prefix reuse
            return
        if self.prefix_cache:
            engine.restore_prefix(tokens)
        engine.splice(tokens)
        engine.ready(tokens, stop)

    # -- LangChain hooks ----------------------------------------------------------------
    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        params = self._params(stop, **kwargs)
        t0 = time.perf_counter()
        payload = [_to_dict(m) for m in messages]
        with self.lock:
            self._ready(payload)
            try:
                resp = self.llama.create_chat_completion(messages=payload, **params)
            except ValueError as e:
                raise _map_error(e, self.n_ctx) from e
        choice = resp["choices"][0]
        usage = resp.get("usage") or {}
        msg = AIMessage(
            content=choice["message"].get("content") or "",
            response_metadata={"finish_reason": choice.get("finish_reason"),
                               "model_name": Path(self.model_path).name,
                               "seconds": round(time.perf_counter() - t0, 3)},
            usage_metadata={"input_tokens": usage.get("prompt_tokens", 0),
                            "output_tokens": usage.get("completion_tokens", 0),
                            "total_tokens": usage.get("total_tokens", 0)},
        )
        return ChatResult(generations=[ChatGeneration(
            message=msg, generation_info={"finish_reason": choice.get("finish_reason")})])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        params = self._params(stop, **kwargs)
        payload = [_to_dict(m) for m in messages]
        t0 = time.perf_counter()
        first: float | None = None
        chunks = 0
        finish = None
        with self.lock:  # held until the stream is exhausted or closed
            self._ready(payload)
            with closing(self._pieces(payload, params)) as pieces:
                for text, finish_reason in pieces:
                    finish = finish_reason or finish
                    if not text:
                        continue
                    if first is None:
                        first = time.perf_counter()
                    chunks += 1
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                    if run_manager:
                        run_manager.on_llm_new_token(text, chunk=chunk)
                    yield chunk
        end = time.perf_counter()
        meta = {"finish_reason": finish, "model_name": Path(self.model_path).name,
                "ttft_s": round((first or end) - t0, 3), "seconds": round(end - t0, 3),
                "chunks": chunks}
        if first is not None and chunks > 1 and end > first:
            meta["chunks_per_s"] = round((chunks - 1) / (end - first), 1)
        yield ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata=meta),
                                  generation_info={"finish_reason": finish})

    # -- extras ---------------------------------------------------------------------------
    def get_token_ids(self, text: str) -> list[int]:
        """The model's own tokenizer (LangChain's fallback would download GPT-2's)."""
        with self.lock:
            return list(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def prefill(self, messages: list[BaseMessage] | str) -> float:
        """Evaluate a fixed prefix now (e.g. the system prompt, as a string or messages)
        and, with ``prefix_cache``, pin it so it is restored rather than re-evaluated
        after other prompts ran. Returns the seconds spent; call it at start-up, off the
        UI thread. Put what never changes first in the system prompt and the retrieved
        notes after it: only the common token prefix is reused."""
        if isinstance(messages, str):
            messages = [SystemMessage(content=messages)]
        payload = [_to_dict(m) for m in messages] + [{"role": "user", "content": ""}]
        t0 = time.perf_counter()
        with self.lock:
            self._ready(payload)
            self.llama.create_chat_completion(messages=payload, max_tokens=1, temperature=0.0)
            if self.prefix_cache:
                self._engine.pin_current()
        return time.perf_counter() - t0

    def preread(self, messages: list[BaseMessage], stop: Callable[[], bool] = lambda: False,
                pin: bool = False) -> int:
        """Evaluate the start of a prompt not yet finished (the last message is cut short:
        the user is still typing the rest), in small batches, until ``stop()`` says the
        prompt changed or a real call wants the model. Returns how many of its tokens the KV
        cache now holds; the next call whose prompt starts the same evaluates only the rest.
        ``pin`` keeps what was read (with ``prefix_cache``) for when another prompt runs in
        between, as a follow-up's rewrite does before its answer.
        A model busy answering is left alone (returns 0): this is spare time, not a queue."""
        if not self.lock.acquire(blocking=False):
            return 0
        try:
            payload = [_to_dict(m) for m in messages]
            engine = self._engine
            tokens = engine.open_prompt_tokens(payload)
            if self.prefix_cache:
                engine.restore_prefix(tokens)
            # no kept blocks copied in: there is time to read the prompt as it is, exactly
            read = engine.settle(tokens, len(tokens), PREREAD_BATCH, stop)
            if pin and self.prefix_cache and read:
                engine.pin_current()
            return read
        finally:
            self.lock.release()

    @property
    def blocks(self) -> Any:
        """The blocks kept for the prompt start given to ``use_blocks`` (None before)."""
        return self._engine.blocks

    def use_blocks(self, start: list[BaseMessage], prefix: list[BaseMessage], vault: Path) -> int:
        """Copy kept blocks (`tutor.llm_blocks`) into prompts that begin with ``start``: blocks
        read after ``prefix``, which continues it (both cut short: more is still to come), from
        the sections of ``vault``. Returns how many blocks are kept for them, from earlier runs
        too (0 for a model whose keys cannot be moved: it reads every prompt as usual)."""
        with self.lock:
            engine = self._engine
            if not llm_blocks.movable(self.llama):
                return 0
            begin, head = (engine.open_prompt_tokens([_to_dict(m) for m in ms]) for ms in (start, prefix))
            if head[: len(begin)] != begin:
                raise ValueError("the blocks' prefix does not continue their start")
            folder = llm_blocks.folder_for(engine.path, begin, head, vault)  # $TUTOR_HOME may have changed
            if engine.blocks is None or engine.blocks.folder != folder:
                engine.blocks = None  # not the last home's blocks if this one cannot be used
                engine.blocks = llm_blocks.Blocks(begin, head, folder)
            return len(engine.blocks)

    def read_block(self, messages: list[BaseMessage], stop: Callable[[], bool] = lambda: False) -> bool | None:
        """Read the block ``messages`` adds to the prefix given to ``use_blocks`` (the prompt
        is cut short: more is to come) and keep it. True when read, False when kept already,
        None when stopped, the model was busy (spare time, as ``preread``) or the blocks'
        disk budget is full."""
        if not self.lock.acquire(blocking=False):
            return None
        try:
            engine, blocks = self._engine, self._engine.blocks
            if blocks is None:  # use_blocks was not called, or this model cannot move keys
                return None
            tokens = engine.open_prompt_tokens([_to_dict(m) for m in messages])
            head = len(blocks.prefix)
            if tuple(tokens[:head]) != blocks.prefix or len(tokens) <= head:
                raise ValueError("the block's prompt does not continue the blocks' prefix")
            block = tuple(tokens[head:])
            if block in blocks:
                return False
            if blocks.full:
                return None
            if self.prefix_cache:
                engine.restore_prefix(tokens)
            engine.settle(tokens, len(tokens), PREREAD_BATCH, stop)
            if stop():
                return None
            self.llama.eval(tokens[self.llama.n_tokens:])  # the part past the grid's last line
            blocks.add(block, llm_blocks.export(self.llama, head, len(tokens)))
            return True
        finally:
            self.lock.release()

    def prune_blocks(self, keep: list[list[BaseMessage]]) -> int | None:
        """Forget the kept blocks that none of the block prompts ``keep`` reads (their sections
        were edited or deleted); returns how many, None when the model was busy."""
        if not self.lock.acquire(blocking=False):
            return None
        try:
            engine, blocks = self._engine, self._engine.blocks
            if blocks is None:
                return 0
            head = len(blocks.prefix)
            return blocks.keep_only({tuple(engine.open_prompt_tokens([_to_dict(m) for m in messages])[head:])
                                     for messages in keep})
        finally:
            self.lock.release()

    def ahead(self, messages: list[BaseMessage], stop: Callable[[], bool] = lambda: False,
              stop_words: list[str] | None = None) -> str | None:
        """A whole reply written in spare time, as ``invoke`` would write it (same prompt
        reading, sampler and seed), or None when ``stop()`` interrupted it or the model was
        busy. Reading stops within a small batch, writing within a token."""
        if not self.lock.acquire(blocking=False):
            return None
        try:
            payload = [_to_dict(m) for m in messages]
            self._ready(payload, stop)
            if stop():
                return None
            text = []
            with closing(self._pieces(payload, self._params(stop_words))) as pieces:
                for piece, _ in pieces:
                    if stop():
                        return None
                    text.append(piece)
            return "".join(text)
        finally:
            self.lock.release()

    def _pieces(self, payload: list[dict[str, str]], params: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
        """(text, finish reason) as llama-cpp-python streams them; the caller holds the lock."""
        try:
            for part in self.llama.create_chat_completion(messages=payload, stream=True, **params):
                choice = part["choices"][0] if part.get("choices") else {}
                yield (choice.get("delta") or {}).get("content") or "", choice.get("finish_reason")
        except ValueError as e:
            raise _map_error(e, self.n_ctx) from e


def make_llamacpp_chat(path: Path, **opts: Any) -> LlamaCppChat:
    opts.pop("host", None)
    opts.pop("keep_alive", None)
    opts = {k: v for k, v in opts.items() if v is not None or k in ("max_tokens", "seed")}
    try:
        return LlamaCppChat(model_path=str(path), **opts)
    except LLMError:
        raise
    except (TypeError, ValueError) as e:
        if isinstance(e.__cause__, LLMError):
            raise e.__cause__ from None
        raise LLMError(f"Bad option for the local model {path.name}: {e}") from e
