"""The ``openai`` backend against local OpenAI-compatible servers on 127.0.0.1 started by the tests:
the project's server in a real subprocess wrapping the transformers backend on the tiny LLaVA, and
in-process servers wrapping the stub for injected faults (HTTP 500s, a slow answer → client timeout)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from caption_gen.backends.base import GenerationRequest
from caption_gen.backends.factory import build_backend
from caption_gen.backends.openai_server import make_server
from caption_gen.backends.spec import ModelSpec

PROMPT = [{"role": "user", "content": "Describe the person."}]


@pytest.fixture()
def stub_server():
    servers = []

    def start(faults=()):
        srv = make_server(build_backend(ModelSpec(backend="stub", name="served-stub")), faults=faults)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv, f"http://127.0.0.1:{srv.server_port}/v1"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _client(base, **kw):
    return build_backend(ModelSpec(backend="openai", name="remote", api_base=base, backoff_s=0.01, **kw), cache=False)


def _req(image, rid="img1|static|remote|a1", seed=1):
    return GenerationRequest(rid, PROMPT, image=image, temperature=0.5, max_tokens=64, seed=seed)


def test_roundtrip_image_kind_and_api_key(stub_server, pil_images, monkeypatch):
    srv, base = stub_server()
    monkeypatch.setenv("PEDES_TEST_API_KEY", "sk-test-secret-123")
    client = _client(base, api_key_env="PEDES_TEST_API_KEY", concurrency=3)
    reqs = [_req(im, rid=f"img{i}|{k}|remote|a1", seed=i) for i, im in enumerate(pil_images[:3])
            for k in ("static", "identity")]
    out = client.generate(reqs)
    assert [r.request_id for r in out] == [r.request_id for r in reqs]
    assert all(r.error is None and r.text and r.finish_reason == "stop" for r in out)
    assert srv.state.served == 6
    assert srv.state.auth_headers == {"Bearer sk-test-secret-123"}
    assert "sk-test" not in repr(client.spec) and "sk-test" not in client.spec.model_dump_json()
    client.close()


def test_http_500_then_success_and_giving_up(stub_server, pil_images):
    _, base = stub_server(faults=["500", "500"])
    client = _client(base, retries=2, concurrency=1)
    out = client.generate([_req(pil_images[0])])
    assert out[0].error is None and out[0].text
    _, base2 = stub_server(faults=["500", "500", "500"])
    client2 = _client(base2, retries=1, concurrency=1)
    failed = client2.generate([_req(pil_images[0])])
    assert failed[0].text == "" and "HTTP 500" in failed[0].error and "gave up after 2" in failed[0].error
    client.close()
    client2.close()


def test_timeout_then_retry(stub_server, pil_images):
    _, base = stub_server(faults=["sleep:1.5"])
    client = _client(base, retries=0, timeout_s=0.3, concurrency=1)
    out = client.generate([_req(pil_images[0])])
    assert "timeout after 0.3s" in out[0].error
    client.close()
    _, base2 = stub_server(faults=["sleep:1.5"])
    client2 = _client(base2, retries=1, timeout_s=0.3, concurrency=1)
    assert client2.generate([_req(pil_images[0])])[0].error is None
    client2.close()


def test_connection_refused_is_an_error_result(pil_images):
    client = _client("http://127.0.0.1:9/v1", retries=1, timeout_s=1.0)
    out = client.generate([_req(pil_images[0])])
    assert "connection error" in out[0].error
    client.close()


def test_subprocess_server_wrapping_transformers(tiny_llava, pil_images, tmp_path):
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "caption_gen.backends.openai_server", "--backend", "transformers", "--model",
         str(tiny_llava), "--name", "tiny-hf", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port_file.read_text()}/v1"
        client = _client(base, served_model="tiny-hf", timeout_s=60, max_pixels=128 * 64)
        out = client.generate([_req(im, seed=3) for im in pil_images[:2]])
        assert all(r.error is None and 0 < r.num_tokens <= 64 for r in out)
        client.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
