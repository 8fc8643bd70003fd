"""``pedes demo`` (what ``make demo`` runs), as a user runs it: the console script in a fresh process,
Prefect's ephemeral API, a config file with paths relative to it — synth + style-clusters, then the
miniature reproduction at micro size: a trained captioner (the suite's tiny one, cached) captions unlabeled
synthetic images with all four kinds through the build-corpus flow and the real CPU vLLM engine, a tiny
model pretrains on that MLLM corpus and is evaluated by direct transfer on a held-out-phrasing target and
after fine-tuning. Asserted: real accepted captions of every kind, their examples beside the attributes,
the table with the pretraining direction judged (printed, not asserted: see the test body); a bad config
exits 2 before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.captioner_settings import TEST_CAPTIONER

REPO = Path(__file__).resolve().parents[2]
PEDES = Path(sys.executable).parent / "pedes"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return subprocess.run([str(PEDES), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)


def _repro_micro(tmp_path: Path) -> Path:
    repro = yaml.safe_load((REPO / "configs" / "repro_quick.yaml").read_text())
    repro.update(recipe=str(REPO / "configs" / "cpu_tiny.yaml"), seeds=1, pretrain_epochs=3, finetune_epochs=1,
                 arms=["none", "static-em"], clothes_change=None, recipe_overrides=["data.batch_size=16"])
    repro["world"] = {"source_identities": 48, "source_images_per_identity": 1, "target_identities": 40,
                      "target_images_per_identity": 2, "image_size": [64, 32]}
    # two captioners, as in the demo: the second continues the first (another seed, 10 % noise, a few steps)
    repro["captioning"].update(clean=[{"name": "cap-test", "seed": 0, "noise": 0.0},
                                      {"name": "cap-test-b", "seed": 1, "noise": 0.1, "from_captioner": "cap-test",
                                       "steps": 20}],
                               captioner=TEST_CAPTIONER, shard_size=24)
    path = tmp_path / "repro_micro.yaml"
    path.write_text(yaml.safe_dump(repro))
    return path


def _config(tmp_path: Path, **repro: object) -> Path:
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    demo["out_dir"] = "out"
    demo["synth"].update(identities=12, images_per_identity=3)
    demo["styles"]["styles"] = {"cluster": {"algorithm": "kmeans-ups", "k_max": 3}, "scatter_points": 100}
    demo["repro"].update({"config": str(_repro_micro(tmp_path)), **repro})
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(demo))
    return path


def test_demo_end_to_end_from_another_directory(tmp_path):
    cfg = _config(tmp_path)
    proc = _run(["demo", "--config", str(cfg)], cwd=tmp_path.parent)  # not the repo root, not the config dir
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "out"
    summary = json.loads((out / "demo-summary.json").read_text())
    assert "PEDES Forge demo finished" in proc.stdout and (out / "config.resolved.yaml").is_file()
    # style-clusters on the synthetic benchmark captions; the prompts are printed
    assert Path(summary["style_bank"]).is_file() and Path(summary["style_inspector"]).is_file()
    assert summary["style_prompts"] and summary["style_prompts"][0][:60] in proc.stdout
    # the trained captioner's captions through the real vLLM engine: accepted captions of every kind
    from caption_gen.corpus.validate import validate_corpus

    clean = summary["captioning"]["clean"]
    assert validate_corpus(summary["corpora"]["clean"]).ok
    for kind in ("static", "dynamic", "identity", "clothing"):
        for model in ("cap-test", "cap-test-b"):  # every kind from both captioners
            assert clean["acceptance"][f"{kind}|{model}"]["accepted"] > 0, (kind, model, clean)
    examples = summary["caption_examples"]["clean"]
    assert {e["kind"] for e in examples} == {"static", "dynamic", "identity", "clothing"}
    assert {e["model"] for e in examples} == {"cap-test", "cap-test-b"}  # examples from both captioners
    assert examples[0]["caption"] in proc.stdout and "truth:" in proc.stdout
    # the miniature table: pretraining on the MLLM corpus beats no pretraining on direct transfer
    table = Path(summary["repro_table"]).read_text()
    assert "| No pretraining |" in table and "| Static text, EM |" in table
    # the corpus's captions are scored against the source images' attributes, and the table says so
    results = json.loads((Path(summary["repro_table"]).parent / "results.json").read_text())
    scored = results["meta"]["corpora"]["clean"]["attribute_accuracy"]
    assert set(scored) == {"static", "dynamic", "identity", "clothing"} and 0 <= scored["static"]["mean"] <= 1
    assert "Attribute accuracy of the corpora's accepted captions" in table and "clean: static" in table
    assert "Miniature reproduction (" in proc.stdout and "Static text, EM" in proc.stdout  # the compact table
    verdict = {d["claim"]: d for d in summary["directions"]}
    first = verdict["MLLM-corpus pretraining beats no pretraining (direct transfer)"]
    # Measured, not asserted: the suite's 240-step test captioner names few attributes right and this world
    # is tiny, so the direction is at chance level here (docs/reproduction.md); it is judged in the table.
    print(f"\ndirect transfer R1: pretrained {first['better_R1']:.1f} vs none {first['worse_R1']:.1f} "
          f"(chance {summary['chance_r1']:.1f}): {first['status']}")
    assert first["status"] != "not run" and "gap_R1" in first


def test_demo_bad_config_exits_2_naming_the_field(tmp_path):
    cfg = _config(tmp_path, config=str(tmp_path / "missing.yaml"))
    proc = _run(["demo", "--config", str(cfg)], cwd=tmp_path)
    assert proc.returncode == 2
    assert "repro.config" in proc.stderr and str(cfg) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
