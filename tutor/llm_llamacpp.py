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
  the new tokens, as long as nothing else ran on the model in between.
* ``prefix_cache=True`` adds a RAM cache of saved states (``LlamaRAMCache``), so that
  after another prompt ran in between (a quiz generator with another system prompt, a
  structured call) the old prefix is restored instead of evaluated again.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, ClassVar, Iterator

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

from tutor.llm import LLAMA_CPP_PIN, LLMError

DEFAULT_CACHE_BYTES = 1 << 30


def _import_llama_cpp():
    try:
        import llama_cpp
    except ImportError as e:
        raise LLMError(
            "The embedded model needs llama-cpp-python, which is not installed (or did not "
            "build). Run 'bash scripts/build_llama.sh', or: "
            f"CMAKE_ARGS=\"-DLLAVA_BUILD=OFF\" python -m pip install {LLAMA_CPP_PIN}  "
            "- or use a running Ollama with --llm ollama:MODEL") from e
    return llama_cpp


class _Engine:
    """One loaded ``Llama`` and the lock that serialises its use."""

    def __init__(self, llama: Any, path: Path):
        self.llama = llama
        self.path = path
        # A plain Lock, not an RLock: LangChain's async streaming (and Gradio) advance a
        # sync generator from different worker threads, so the thread that releases the
        # lock at the end of a stream is often not the one that took it.
        self.lock = threading.Lock()
        self.load_seconds = 0.0


_ENGINES: dict[tuple, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _slim_state_cache(llama_cpp: Any, capacity_bytes: int) -> Any:
    """An LRU ``LlamaRAMCache`` that does not keep per-state logits.

    ``Llama.save_state`` copies its whole ``scores`` array (n_batch x vocab floats:
    ~311 MB for Qwen's 152k vocabulary) into every saved state, and LlamaRAMCache does not
    count those bytes against its capacity, so memory grows by ~0.3 GB per turn. A
    restored state is always re-evaluated from its last token before sampling
    (``load_state`` sets ``_requires_eval``), so the logits are never read: keep one row.
    """

    class SlimRAMCache(llama_cpp.LlamaRAMCache):
        def __setitem__(self, key, value):
            if getattr(value, "scores", None) is not None and len(value.scores) > 1:
                value.scores = value.scores[-1:].copy()
            super().__setitem__(key, value)

    return SlimRAMCache(capacity_bytes=capacity_bytes)


def get_engine(path: Path, n_ctx: int = 4096, n_threads: int | None = None,
               n_batch: int = 512, prefix_cache: bool = True,
               cache_bytes: int = DEFAULT_CACHE_BYTES) -> _Engine:
    """Load (once per process and settings) the GGUF at ``path``."""
    path = Path(path).resolve()
    n_threads = n_threads or os.cpu_count() or 1
    key = (str(path), n_ctx, n_threads, n_batch, prefix_cache, cache_bytes)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is not None:
            return engine
        if not path.is_file():
            raise LLMError(f"No GGUF model file at {path}.")
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                raise LLMError(f"{path} is not a GGUF model file (llama.cpp reads only GGUF).")
        llama_cpp = _import_llama_cpp()
        t0 = time.perf_counter()
        try:
            llama = llama_cpp.Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=n_threads,
                n_threads_batch=n_threads, n_batch=n_batch, n_gpu_layers=0, verbose=False)
        except Exception as e:  # llama_cpp raises ValueError with little detail
            raise LLMError(f"llama.cpp could not load {path}: {e}. Is it a complete GGUF "
                           "file of a model architecture llama.cpp supports?") from e
        if prefix_cache:
            llama.set_cache(_slim_state_cache(llama_cpp, cache_bytes))
        engine = _Engine(llama, path)
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
                                  self.n_batch, self.prefix_cache, self.cache_bytes)

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

    # -- LangChain hooks ----------------------------------------------------------------
    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        params = self._params(stop, **kwargs)
        t0 = time.perf_counter()
        with self.lock:
            try:
                resp = self.llama.create_chat_completion(
                    messages=[_to_dict(m) for m in messages], **params)
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
            try:
                for part in self.llama.create_chat_completion(
                        messages=payload, stream=True, **params):
                    choice = part["choices"][0] if part.get("choices") else {}
                    finish = choice.get("finish_reason") or finish
                    text = (choice.get("delta") or {}).get("content")
                    if not text:
                        continue
                    if first is None:
                        first = time.perf_counter()
                    chunks += 1
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                    if run_manager:
                        run_manager.on_llm_new_token(text, chunk=chunk)
                    yield chunk
            except ValueError as e:
                raise _map_error(e, self.n_ctx) from e
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
        """Evaluate a fixed prefix (e.g. the system prompt) now, so the first real turn
        starts from it. Returns the seconds spent. Call it at start-up, off the UI thread."""
        if isinstance(messages, str):
            messages = [SystemMessage(content=messages)]
        payload = [_to_dict(m) for m in messages] + [{"role": "user", "content": ""}]
        t0 = time.perf_counter()
        with self.lock:
            self.llama.create_chat_completion(messages=payload, max_tokens=1, temperature=0.0)
        return time.perf_counter() - t0


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
