"""The Ollama backend: langchain-ollama's ChatOllama, with errors a person can act on.

Imported lazily by ``tutor.llm.get_chat_model``; do not import this at program start.
"""
from __future__ import annotations

import re
from typing import Any, AsyncIterator, ClassVar, Iterator

import httpx
import ollama
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_ollama import ChatOllama

from tutor.llm import (
    LLMError,
    list_ollama_models,
    ollama_down_message,
    ollama_has_model,
    ollama_host,
    ollama_not_pulled_message,
)

_HANGUL = re.compile(r"[\uac00-\ud7a3\u3130-\u318f]")


class TutorChatOllama(ChatOllama):
    """ChatOllama whose failures are ``LLMError`` with what to do about them."""

    _tutor_backend: ClassVar[str] = "ollama"

    def _map_error(self, e: Exception) -> LLMError:
        host = self.base_url or ollama_host()
        if isinstance(e, ConnectionError) or isinstance(e, httpx.ConnectError):
            return LLMError(ollama_down_message(host))
        if isinstance(e, ollama.ResponseError):
            if e.status_code == 404 and "not found" in str(e.error).lower():
                return LLMError(ollama_not_pulled_message(self.model))
            return LLMError(f"Ollama at {host} answered with an error: {e.error}")
        if isinstance(e, httpx.HTTPError):
            return LLMError(f"Lost the connection to Ollama at {host}: {e}")
        return LLMError(f"Ollama at {host} failed: {e}")

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return super()._generate(*args, **kwargs)
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError) as e:
            raise self._map_error(e) from e

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        try:
            yield from super()._stream(*args, **kwargs)
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError) as e:
            raise self._map_error(e) from e

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        try:
            return await super()._agenerate(*args, **kwargs)
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError) as e:
            raise self._map_error(e) from e

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        try:
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError) as e:
            raise self._map_error(e) from e

    def get_num_tokens(self, text: str) -> int:
        """An estimate (Ollama has no tokenizer endpoint; LangChain's fallback would try to
        download GPT-2's tokenizer): one token per Hangul syllable, ~3.5 chars otherwise."""
        hangul = len(_HANGUL.findall(text))
        return hangul + int((len(text) - hangul) / 3.5 + 0.999)


_OPTION_MAP = {  # our common option name -> ChatOllama field
    "temperature": "temperature",
    "max_tokens": "num_predict",
    "top_p": "top_p",
    "top_k": "top_k",
    "repeat_penalty": "repeat_penalty",
    "seed": "seed",
    "stop": "stop",
    "n_ctx": "num_ctx",
    "n_threads": "num_thread",
}
_LLAMACPP_ONLY = {"n_batch", "prefix_cache", "cache_bytes", "min_p", "verbose", "draft_tokens"}


def make_ollama_chat(model: str, host: str | None = None, check: bool = True,
                     **opts: Any) -> TutorChatOllama:
    """A chat model for ``model`` on the Ollama at ``host`` ($OLLAMA_HOST by default).

    With ``check`` (the default) the server is asked once, via /api/tags, whether it is up
    and has the model, so the first message does not fail half-way through a UI.
    """
    url = ollama_host(host)
    if check:
        installed = list_ollama_models(url)
        if not ollama_has_model(model, installed):
            raise LLMError(ollama_not_pulled_message(model))
    fields: dict[str, Any] = {}
    for key, value in opts.items():
        if key in _LLAMACPP_ONLY or value is None:
            continue
        fields[_OPTION_MAP.get(key, key)] = value
    fields.setdefault("num_ctx", 4096)
    try:
        return TutorChatOllama(model=model, base_url=url, **fields)
    except (TypeError, ValueError) as e:
        raise LLMError(f"Bad option for the Ollama model {model}: {e}") from e
