"""``pedes caption --backend openai`` in a real process against loopback servers: a recording HTTP proxy
named in the environment sees nothing (images and the API key go to the configured base URL only), a
redirect to another server is not followed, and an explicitly configured proxy is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-loopback-secret-42"


class _Recorder:
    """A loopback HTTP server that records every request (line + Authorization) and answers ``status``."""

    def __init__(self, status: int = 502, location: str | None = None):
        self.seen: list[tuple[str, str | None]] = []
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # noqa: D401 - quiet
                return None

            def _any(self):
                n = int(self.headers.get("content-length") or 0)
                if n:
                    self.rfile.read(n)
                rec.seen.append((self.requestline, self.headers.get("authorization")))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_CONNECT = _any  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def servers():
    from caption_gen.backends.factory import build_backend
    from caption_gen.backends.openai_server import make_server
    from caption_gen.backends.spec import ModelSpec

    made = []
    api = make_server(build_backend(ModelSpec(backend="stub", name="remote")))
    threading.Thread(target=api.serve_forever, daemon=True).start()
    proxy = _Recorder(502)
    evil = _Recorder(200)
    redirect = _Recorder(307, location=f"{evil.url}/v1/chat/completions")
    made += [proxy, evil, redirect]
    yield {"api": api, "api_url": f"http://127.0.0.1:{api.server_port}/v1", "proxy": proxy, "evil": evil,
           "redirect": redirect}
    api.shutdown()
    api.server_close()
    for r in made:
        r.close()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    from caption_gen.synth import render_dataset

    out = tmp_path_factory.mktemp("http-imgs")
    render_dataset(out, identities=2, images_per_identity=2, seed=9, size=(64, 32))
    return out / "imgs"


def _run(tmp: Path, images: Path, api_base: str, proxy_url: str) -> subprocess.CompletedProcess:
    cfg = tmp / "run.yaml"
    cfg.write_text(json.dumps({"images": str(images), "out": str(tmp / "corpus"), "kinds": ["static"],
                               "models": [{"name": "remote", "backend": "openai", "api_base": api_base,
                                           "api_key_env": "PEDES_LOOPBACK_KEY", "retries": 0, "timeout_s": 10}]}))
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy", "all_proxy")}
    env.update(PYTHONPATH=str(REPO), PEDES_LOOPBACK_KEY=KEY, HTTP_PROXY=proxy_url, HTTPS_PROXY=proxy_url,
               ALL_PROXY=proxy_url, http_proxy=proxy_url, https_proxy=proxy_url)
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "caption", "--config", str(cfg),
                           "--no-progress"], capture_output=True, text=True, cwd=tmp, env=env, timeout=240)


def test_environment_proxy_is_not_used_and_the_key_reaches_only_the_base_url(servers, images, tmp_path):
    res = _run(tmp_path, images, servers["api_url"], servers["proxy"].url)
    assert res.returncode == 0, res.stderr
    assert "4 captions accepted" in res.stderr
    assert servers["proxy"].seen == []  # the old client sent every image and the key through it
    assert servers["api"].state.auth_headers == {f"Bearer {KEY}"}


def test_redirect_is_not_followed(servers, images, tmp_path):
    res = _run(tmp_path, images, servers["redirect"].url + "/v1", servers["proxy"].url)
    assert res.returncode == 1, res.stderr
    assert "redirect to " + servers["evil"].url in res.stderr and "not followed" in res.stderr
    assert servers["evil"].seen == [] and servers["proxy"].seen == []
    assert all(auth == f"Bearer {KEY}" for _, auth in servers["redirect"].seen)  # the base URL only


def test_explicit_proxy_setting_is_used(servers, pil_images_small):
    """``proxy:`` on the spec routes the requests through that proxy (and only then)."""
    from caption_gen.backends.base import GenerationRequest
    from caption_gen.backends.openai_backend import OpenAIBackend
    from caption_gen.backends.spec import ModelSpec

    spec = ModelSpec(backend="openai", name="remote", api_base=servers["api_url"], retries=0,
                    proxy=servers["proxy"].url)
    backend = OpenAIBackend(spec)
    try:
        out = backend.generate([GenerationRequest("a|static|remote|a1", [{"role": "user", "content": "Describe."}],
                                                  image=pil_images_small, max_tokens=16, seed=1)])
    finally:
        backend.close()
    assert len(servers["proxy"].seen) == 1 and servers["proxy"].url not in servers["proxy"].seen[0][0]
    assert "HTTP 502" in (out[0].error or "")
    with pytest.raises(ValueError, match="openai backend only"):
        ModelSpec(backend="stub", name="s", proxy="http://127.0.0.1:1")


@pytest.fixture()
def pil_images_small():
    from PIL import Image

    return Image.new("RGB", (32, 64), (120, 30, 30))
