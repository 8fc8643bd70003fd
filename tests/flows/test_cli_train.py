"""``pedes train`` / ``pedes eval`` from the command line: config errors exit 2 naming field and file,
``--smoke`` runs both shipped recipes end to end, the pretrain → fine-tune → protocol tables chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flows.cli import main

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "configs"


def run_cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_unknown_key_in_recipe_file_exits_2_naming_field_and_file(tmp_path, capsys):
    recipe = yaml.safe_load((RECIPES / "finetune_irra.yaml").read_text())
    recipe["optim"]["learning_rate"] = 1e-4
    bad = tmp_path / "bad_recipe.yaml"
    bad.write_text(yaml.safe_dump(recipe))
    assert run_cli(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad_recipe.yaml" in err and "optim.learning_rate" in err and "unknown key" in err
    assert "Traceback" not in err


def test_wrong_type_and_bad_override_exit_2(tmp_path, capsys):
    assert run_cli(["train", "--config", str(RECIPES / "pretrain_nam.yaml"), "--set", "data.batch_size=many"]) == 2
    assert "data.batch_size" in capsys.readouterr().err
    assert run_cli(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_shipped_recipes_validate():
    from training.config import load_recipe

    pre = load_recipe(RECIPES / "pretrain_nam.yaml")
    ft = load_recipe(RECIPES / "finetune_irra.yaml")
    assert pre.method.name == "nam_sdm" and pre.data.corpus is not None and pre.model.image_size == (384, 128)
    assert ft.method.name == "irra" and ft.data.benchmark is not None and ft.optim.lr == 1e-5
    sew = load_recipe(RECIPES / "sew_mcm.yaml")
    assert sew.method.name == "sew_mcm" and sew.method.params["scale"] == 32.0
    cfam = load_recipe(RECIPES / "cfam.yaml")
    assert cfam.method.name == "cfam" and cfam.model.context_length == 168
    assert cfam.data.benchmark.name == "ufine6926" and cfam.eval.benchmarks[0].name == "ufine3c"
    weak = load_recipe(RECIPES / "weak_dual_granularity.yaml")
    assert weak.method.name == "weak_dual_granularity" and weak.method.params["threshold"] == 0.7
    assert weak.data.sampler == "random"  # pairing only: no identity-balanced sampling either


@pytest.mark.parametrize("recipe", ["pretrain_nam.yaml", "finetune_irra.yaml", "sew_mcm.yaml", "cfam.yaml",
                                    "weak_dual_granularity.yaml", "bdam.yaml"])
def test_smoke_runs_each_recipe_and_writes_results(recipe, tmp_path, capsys):
    code = run_cli(["train", "--config", str(RECIPES / recipe), "--smoke", "--set", f"engine.output_dir={tmp_path}",
                    "--set", "engine.progress=false"])
    assert code == 0, capsys.readouterr().err
    (run,) = list((tmp_path / "smoke").iterdir())
    results = json.loads((run / "results.json").read_text())
    assert results["global_step"] == 6
    assert results["selection"]["split"] == "validation"
    test = results["test"]["synthetic"]
    assert test["num_queries"] > 0 and 0.0 <= test["t2i"]["R1"] <= 100.0
    assert (run / "checkpoints" / "final.pt").is_file() and (run / "metrics.jsonl").is_file()
    assert (run / "config.resolved.yaml").is_file()


TINY = [
    "model.arch=tiny", "model.image_size=[64,32]", "model.nam_layer=1", "data.num_workers=0",
    "data.batch_size=16", "schedule.epochs=1", "schedule.max_steps=4", "engine.progress=false",
    "engine.tensorboard=false", "optim.lr=1e-4", "eval.batch_size=64",
]


@pytest.fixture(scope="module")
def synth_benchmark(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth-cli")
    assert run_cli(["synth", "--out", str(out), "--identities", "30", "--images-per-identity", "3", "--seed", "1"]) == 0
    return out


def test_pretrain_then_finetune_then_protocol_tables(synth_benchmark, tmp_path, capsys):
    """The training protocol (DESIGN §5, docs/training.md) on synthetic data: ground-truth captions imported as a corpus → pretrain
    recipe → fine-tune recipe from its checkpoint → direct-transfer and fine-tune tables."""
    ann, imgs = synth_benchmark / "reid_raw.json", synth_benchmark / "imgs"
    corpus = tmp_path / "corpus"
    assert run_cli(["corpus", "import", "--format", "cuhk-pedes", "--annotations", str(ann), "--images", str(imgs),
                    "--out", str(corpus), "--split", "train"]) == 0
    runs = tmp_path / "runs"
    bench = f"{{name: cuhk-pedes, annotations: {ann}, images: {imgs}, label: Synthetic}}"
    assert run_cli(["train", "--config", str(RECIPES / "pretrain_nam.yaml"), "--set", f"data.corpus.root={corpus}",
                    "--set", f"engine.output_dir={runs}", *[a for s in TINY for a in ("--set", s)]]) == 0
    (pre_run,) = [p for p in runs.iterdir() if p.name.startswith("pretrain_nam-")]
    pre_results = json.loads((pre_run / "results.json").read_text())
    assert pre_results["data"]["kinds"] == {"human": pre_results["data"]["captions"]}
    assert run_cli(["train", "--config", str(RECIPES / "finetune_irra.yaml"),
                    "--set", f"method.pretrained={pre_results['checkpoint']}",
                    "--set", f"data.benchmark={bench}", "--set", f"eval.benchmarks=[{bench}]",
                    "--set", f"engine.output_dir={runs}", *[a for s in TINY for a in ("--set", s)]]) == 0
    (ft_run,) = [p for p in runs.iterdir() if p.name.startswith("finetune_irra-")]
    assert "Synthetic" in json.loads((ft_run / "results.json").read_text())["test"]

    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(yaml.safe_dump({
        "benchmarks": [{"name": "cuhk-pedes", "annotations": str(ann), "images": str(imgs), "label": "Synthetic"}],
        "direct_transfer": [{"init": "Ours (synthetic corpus)", "checkpoint": str(pre_run)}],
        "finetune": [{"init": "Ours (synthetic corpus)", "source": "Synthetic", "checkpoint": str(ft_run)}],
        "device": "cpu",
    }))
    out = tmp_path / "tables"
    assert run_cli(["eval", "--protocol", str(protocol), "--out", str(out)]) == 0
    direct = (out / "direct_transfer.md").read_text().splitlines()
    assert "| Init | Synthetic R1 | Synthetic mAP |" in direct
    assert any(line.startswith("| Ours (synthetic corpus) | ") for line in direct)
    finetune = (out / "finetune.md").read_text()
    assert "| Ours (synthetic corpus) | Synthetic | " in finetune
    payload = json.loads((out / "protocol.json").read_text())
    assert payload["finetune"]["Ours (synthetic corpus)"]["Synthetic"]["Synthetic"]["num_queries"] > 0
    assert (out / "cmc-direct-Synthetic.png").is_file()

    single = tmp_path / "single"
    assert run_cli(["eval", "--checkpoint", str(ft_run), "--dataset", "cuhk-pedes", "--annotations", str(ann),
                    "--images", str(imgs), "--out", str(single), "--device", "cpu"]) == 0
    assert json.loads((single / "results.json").read_text())["t2i"]["R1"] >= 0
    assert (single / "cmc.png").is_file()


def test_eval_without_arguments_exits_2(capsys):
    assert run_cli(["eval"]) == 2
    assert "--checkpoint" in capsys.readouterr().err
