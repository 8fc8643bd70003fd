"""A minimal OpenAI-compatible chat-completions server wrapping any project backend.

For tests and local runs without ``vllm serve``: ``POST /v1/chat/completions`` (text and
``image_url`` data-URL parts), ``GET /v1/models``, ``GET /health``. Standard library HTTP server
(threaded); the wrapped backend is called under a lock (one generation at a time).

Fault injection (tests of the client's timeouts and retries): ``faults`` is a list of actions the
server applies to the next requests, in order, one per request — ``"500"`` (answer HTTP 500),
``"sleep:S"`` (wait S seconds, then answer normally), ``"ok"``. After the list is used up every
request is answered normally.

Run: ``python -m caption_gen.backends.openai_server --backend stub --port 0 --port-file PORTFILE``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

from caption_gen.backends.base import CaptionBackend, GenerationRequest, message_text


def _decode_data_url(url: str) -> Image.Image:
    if not url.startswith("data:"):
        raise ValueError("only data: image URLs are accepted (no downloads)")
    _, _, b64 = url.partition(",")
    return Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")


def parse_chat_request(body: dict[str, Any], request_id: str) -> GenerationRequest:
    """Turn an OpenAI chat-completions body into a :class:`GenerationRequest` (first image only)."""
    messages: list[dict[str, Any]] = []
    image = None
    for msg in body.get("messages") or []:
        content = msg.get("content", "")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url" and image is None:
                    url = part["image_url"]["url"] if isinstance(part["image_url"], dict) else part["image_url"]
                    image = _decode_data_url(url)
        messages.append({"role": msg.get("role", "user"), "content": message_text(content)})
    if not messages:
        raise ValueError("'messages' is empty")
    return GenerationRequest(
        request_id=request_id, messages=messages, image=image, temperature=body.get("temperature"),
        top_p=body.get("top_p"), max_tokens=body.get("max_tokens") or body.get("max_completion_tokens"),
        seed=body.get("seed"),
    )


class _State:
    def __init__(self, backend: CaptionBackend, model_name: str, faults: Sequence[str]):
        self.backend = backend
        self.model_name = model_name
        self.faults = list(faults)
        self.lock = threading.Lock()
        self.fault_lock = threading.Lock()
        self.served = 0
        #: distinct ``Authorization`` header values seen (tests check the key travels; never logged)
        self.auth_headers: set[str] = set()

    def next_fault(self) -> str:
        with self.fault_lock:
            return self.faults.pop(0) if self.faults else "ok"


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet server
            return

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/") in ("/health", ""):
                self._send(200, {"status": "ok"})
            elif self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": state.model_name, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            auth = self.headers.get("Authorization")
            if auth:
                state.auth_headers.add(auth)
            fault = state.next_fault()
            if fault == "500":
                self._send(500, {"error": {"message": "injected server error"}})
                return
            if fault.startswith("sleep:"):
                time.sleep(float(fault.split(":", 1)[1]))
            try:
                body = json.loads(raw)
                rid = self.headers.get("X-Request-Id") or f"req-{time.monotonic_ns()}"
                request = parse_chat_request(body, rid)
            except (ValueError, KeyError, TypeError, OSError) as exc:
                self._send(400, {"error": {"message": f"bad request: {exc}"}})
                return
            try:
                with state.lock:
                    result = state.backend.generate([request])[0]
                    state.served += 1
            except Exception as exc:  # noqa: BLE001 - report backend failures as HTTP 500
                self._send(500, {"error": {"message": f"{type(exc).__name__}: {exc}"}})
                return
            if result.error:
                self._send(500, {"error": {"message": result.error}})
                return
            self._send(200, {
                "id": f"chatcmpl-{rid}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", state.model_name),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                             "finish_reason": result.finish_reason}],
                "usage": {"completion_tokens": result.num_tokens},
            })

    return Handler


def make_server(backend: CaptionBackend, *, host: str = "127.0.0.1", port: int = 0,
                model_name: str | None = None, faults: Sequence[str] = ()) -> ThreadingHTTPServer:
    """A server (not yet serving) bound to ``host:port`` (``port=0``: a free port, see ``server_port``)."""
    state = _State(backend, model_name or backend.name, faults)
    server = ThreadingHTTPServer((host, port), _handler(state))
    server.daemon_threads = True
    server.state = state  # type: ignore[attr-defined]
    return server


def main(argv: Sequence[str] | None = None) -> None:
    """Serve one backend until killed (used by tests as a real separate process)."""
    from caption_gen.backends.factory import build_backend
    from caption_gen.backends.spec import ModelSpec

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("stub", "transformers", "vllm"), default="stub")
    ap.add_argument("--model", default=None, help="model folder (transformers / vllm)")
    ap.add_argument("--name", default=None, help="model name reported by the server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", default=None, help="write the bound port here once listening")
    ap.add_argument("--fault", action="append", default=[], help="500 | sleep:S | ok (repeatable, in order)")
    args = ap.parse_args(argv)
    spec = ModelSpec(backend=args.backend, path=args.model, name=args.name)
    backend = build_backend(spec)
    server = make_server(backend, host=args.host, port=args.port, model_name=args.name or spec.label,
                         faults=args.fault)
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(server.server_port))
        tmp.replace(args.port_file)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        backend.close()


if __name__ == "__main__":
    main()
