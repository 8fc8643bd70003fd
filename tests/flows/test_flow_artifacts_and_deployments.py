"""Prefect as its users use it (docs/prefect.md): ``build-corpus`` publishes acceptance and rejects as table
artifacts; ``prefect.yaml`` is generated from ``configs/deployments.yaml`` (one source of truth)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _table_artifact(key: str) -> tuple[str, list[dict]]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        resp = client._client.post("/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}},
                                                               "sort": "CREATED_DESC", "limit": 1})
    resp.raise_for_status()
    (art,) = resp.json()
    data = art["data"]
    return art["type"], json.loads(data) if isinstance(data, str) else data


@pytest.mark.usefixtures("prefect_harness")
def test_build_corpus_publishes_acceptance_and_rejects_tables(tmp_path, synth_small, stub_config_writer):
    from flows.registry import run_flow

    images = tmp_path / "imgs"
    images.mkdir()
    for p in sorted((synth_small / "imgs").rglob("*.jpg"))[:5]:
        (images / p.name).write_bytes(p.read_bytes())
    (images / "broken.jpg").write_bytes(b"not an image")
    cfg = stub_config_writer(tmp_path / "bc.yaml", images, tmp_path / "corpus")
    s = run_flow("build-corpus", cfg)
    kind, acceptance = _table_artifact("build-corpus-acceptance")
    assert kind == "table"
    assert sorted((r["kind"], r["model"], r["rows"], r["accepted"], r["rate"]) for r in acceptance) == [
        ("identity", "stub-a", 5, 5, 1.0), ("static", "stub-a", 5, 5, 1.0)]
    kind, rejects = _table_artifact("build-corpus-rejects")
    assert kind == "table"
    assert rejects == [{"reason": r, "count": n} for r, n in s["rejects_by_reason"].items()] and rejects


def test_prefect_yaml_is_generated_from_the_deployments_file(tmp_path):
    from flows.serve import prefect_yaml_text

    committed = (REPO / "prefect.yaml").read_text()
    assert prefect_yaml_text(REPO / "configs" / "deployments.yaml", REPO) == committed, (
        "prefect.yaml is stale: pedes serve -c configs/deployments.yaml --write-prefect-yaml prefect.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "prefect.yaml"
    proc = subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "serve", "-c",
                           str(REPO / "configs" / "deployments.yaml"), "--write-prefect-yaml", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # written next to another folder, the config paths are relative to that folder
    assert "config: ../../" not in committed and "configs/flows/build_corpus.yaml" in committed
    assert out.read_text().count("entrypoint: flows/") == len(yaml.safe_load((REPO / "configs" / "deployments.yaml").read_text())["deployments"])


def test_deployment_names_and_schedules_agree(tmp_path):
    import yaml

    from flows.serve import load_deployments

    spec = load_deployments(REPO / "configs" / "deployments.yaml")
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert [d["name"] for d in doc["deployments"]] == [d.name for d in spec.deployments]
    assert [(d.get("schedules") or [{}])[0].get("cron") for d in doc["deployments"]] == [d.cron for d in spec.deployments]
