"""A tiny loopback server that speaks enough of Ollama's HTTP API for tests.

No Ollama server can be installed on the machines this project is built on, so the
Ollama backend is tested against this stand-in. It binds 127.0.0.1 on a free port,
serves ``/api/tags``, ``/api/show`` and ``/api/chat`` (NDJSON streaming and
non-streaming), answers with replies queued by the test, and records every request
it received so tests can check what the client sent (e.g. the JSON schema in
``format``).

    with OllamaStub(models=["qwen-test:latest"]) as stub:
        stub.queue("첫 번째 ", "답변입니다.")   # one reply, streamed as two chunks
        stub.queue({"answer": "S3"})             # a JSON reply (for format=schema)
        os.environ["OLLAMA_HOST"] = stub.host
"""
from __future__ import annotations

import collections
import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_REPLY = ("기본 ", "응답입니다.")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _matches(requested: str, installed: str) -> bool:
    """Ollama treats a name without a tag as ``:latest``."""
    if ":" not in requested:
        requested += ":latest"
    return requested == installed


class OllamaStub:
    def __init__(self, models: list[str] | tuple[str, ...] = ("qwen-test:latest",)):
        self.models = [m if ":" in m else m + ":latest" for m in models]
        self.requests: list[dict[str, Any]] = []  # {"method", "path", "body"}
        self._replies: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- test-facing API ---------------------------------------------------
    def queue(self, *chunks: str | dict | list) -> None:
        """Queue one reply. Several string arguments are streamed as separate chunks;
        a dict or list is sent as its JSON text (one chunk)."""
        parts = [json.dumps(c, ensure_ascii=False) if not isinstance(c, str) else c for c in chunks]
        with self._lock:
            self._replies.append(parts)

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/api/chat"]

    @property
    def host(self) -> str:
        assert self._server is not None, "stub not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "OllamaStub":
        stub = self

        class Handler(_Handler):
            owner = stub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "OllamaStub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- used by the handler -------------------------------------------------
    def _next_reply(self) -> list[str]:
        with self._lock:
            return self._replies.popleft() if self._replies else list(DEFAULT_REPLY)

    def _installed(self, name: str) -> str | None:
        return next((m for m in self.models if _matches(name, m)), None)


class _Handler(BaseHTTPRequestHandler):
    owner: OllamaStub
    protocol_version = "HTTP/1.0"  # one response per connection; streams end at close

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return {"_raw": raw.decode("utf-8", "replace")}

    def _send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: dict[str, Any] | None) -> None:
        self.owner.requests.append({"method": self.command, "path": self.path, "body": body})

    def do_GET(self) -> None:
        self._record(None)
        if self.path == "/api/tags":
            models = [
                {
                    "name": m,
                    "model": m,
                    "modified_at": _now(),
                    "size": 1000,
                    "digest": "0" * 64,
                    "details": {"format": "gguf", "family": "qwen2", "parameter_size": "1.5B",
                                "quantization_level": "Q4_K_M"},
                }
                for m in self.owner.models
            ]
            self._send_json(200, {"models": models})
        elif self.path == "/api/version":
            self._send_json(200, {"version": "0.0.0-stub"})
        else:
            self._send_json(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = self._body()
        self._record(body)
        if self.path == "/api/show":
            name = body.get("model") or body.get("name") or ""
            if not self.owner._installed(name):
                self._send_json(404, {"error": f"model '{name}' not found"})
                return
            self._send_json(200, {
                "modelfile": "", "parameters": "", "template": "{{ .Prompt }}",
                "details": {"format": "gguf", "family": "qwen2"},
                "model_info": {"general.architecture": "qwen2"},
                "capabilities": ["completion"],
                "modified_at": _now(),
            })
        elif self.path == "/api/chat":
            self._chat(body)
        else:
            self._send_json(404, {"error": "not found"})

    def _chat(self, body: dict[str, Any]) -> None:
        name = body.get("model", "")
        if not self.owner._installed(name):
            self._send_json(404, {"error": f'model "{name}" not found, try pulling it first'})
            return
        parts = self.owner._next_reply()
        final = {
            "model": name, "created_at": _now(),
            "message": {"role": "assistant", "content": ""},
            "done": True, "done_reason": "stop",
            "total_duration": 1000, "load_duration": 10,
            "prompt_eval_count": 10, "prompt_eval_duration": 100,
            "eval_count": len(parts), "eval_duration": 100,
        }
        if body.get("stream", True):
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            for p in parts:
                line = {"model": name, "created_at": _now(),
                        "message": {"role": "assistant", "content": p}, "done": False}
                self.wfile.write(json.dumps(line, ensure_ascii=False).encode() + b"\n")
                self.wfile.flush()
            self.wfile.write(json.dumps(final).encode() + b"\n")
            self.wfile.flush()
        else:
            final["message"]["content"] = "".join(parts)
            self._send_json(200, final)
