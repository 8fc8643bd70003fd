"""Parts of the miniature reproduction (DESIGN.md §8) that need no training: the world's disjointness and
held-out phrasings, the clothes-change split, the arms' recipes, and the verdict on each direction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pedes_core.errors import ConfigError
from training.config import RecipeConfig, load_recipe
from training.repro.arms import ARMS_BY_NAME, finetune_recipe, pretrain_recipe, select_arms, target_source
from training.repro.clothes_change import clothes_change_set
from training.repro.config import ReproConfig, WorldConfig
from training.repro.table import aggregate, directions, markdown, write_outputs
from training.repro.world import build_world

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    cfg = WorldConfig(source_identities=6, source_images_per_identity=1, target_identities=10,
                      target_images_per_identity=2, image_size=(64, 32))
    return build_world(cfg, tmp_path_factory.mktemp("world"))


def test_world_parts_are_disjoint_and_target_uses_heldout_phrasings(world):
    from caption_gen.synth.attributes import Identity, Outfit
    from caption_gen.synth.captions import PATTERNS

    src = json.loads(world.source.joinpath("reid_raw.json").read_text())
    tgt = json.loads(world.target_annotations.read_text())
    assert {e["id"] for e in src}.isdisjoint({e["id"] for e in tgt})
    assert {e["split"] for e in tgt} == {"train", "val", "test"}
    attrs = {json.loads(x)["file_path"]: json.loads(x) for x in world.target.joinpath("attributes.jsonl").read_text().splitlines()}
    for e in tgt:
        a = attrs[e["file_path"]]
        default = {p(Identity(**a["identity"]), Outfit(**a["outfit"])) for p in PATTERNS}
        assert not set(e["captions"]) & default


def test_world_is_reused_when_unchanged(world):
    stamp = world.target_annotations.stat().st_mtime_ns
    again = build_world(WorldConfig(source_identities=6, source_images_per_identity=1, target_identities=10,
                                    target_images_per_identity=2, image_size=(64, 32)), world.source.parent)
    assert again == world and world.target_annotations.stat().st_mtime_ns == stamp


def test_clothes_change_queries_never_see_their_outfit_in_the_gallery(tmp_path):
    from caption_gen.synth import render_dataset

    render_dataset(tmp_path, identities=12, images_per_identity=4, outfits_per_identity=2, seed=3, size=(64, 32))
    data = clothes_change_set(tmp_path, "train")
    outfit = {json.loads(x)["file_path"]: json.loads(x)["outfit_id"] for x in (tmp_path / "attributes.jsonl").read_text().splitlines()}
    assert data.gallery_paths and all(outfit[p] != 0 for p in data.gallery_paths)
    assert set(data.query_ids.tolist()) <= set(data.gallery_ids.tolist())  # every query has a positive


def test_arm_recipes_follow_the_ablation(tmp_path):
    base = load_recipe(REPO / "configs" / "cpu_tiny.yaml")
    target = target_source(tmp_path / "reid_raw.json", tmp_path / "imgs")
    pre = pretrain_recipe(base, ARMS_BY_NAME["static-em"], corpus=tmp_path / "c", models=["cap-a"], target=target,
                          seed=3, epochs=2, mask_ratio=0.15, out=tmp_path)
    assert isinstance(pre, RecipeConfig) and pre.method.name == "nam_sdm"
    assert pre.method.params["masking"] == "em" and pre.data.corpus.kinds == ["static"]
    assert pre.data.benchmark is None and pre.data.captions_per_epoch == "all" and pre.engine.seed == 3
    nam = pretrain_recipe(base, ARMS_BY_NAME["tde-nam"], corpus=tmp_path / "c", models=["cap-a"], target=target,
                          seed=0, epochs=2, mask_ratio=0.15, out=tmp_path)
    assert nam.method.params["masking"] == "nam" and nam.data.corpus.kinds == ["static", "dynamic"]
    ft = finetune_recipe(base, ARMS_BY_NAME["tde-nam"], pretrained=tmp_path / "best.pt", target=target, seed=0,
                         epochs=2, out=tmp_path)
    assert ft.method.name == base.method.name and ft.method.pretrained == tmp_path / "best.pt"
    assert ft.data.benchmark.annotations == tmp_path / "reid_raw.json" and ft.data.corpus is None
    with pytest.raises(ConfigError, match="unknown arm"):
        select_arms(["static-em", "bogus"])


def test_pretrain_overrides_reach_the_pretraining_only(tmp_path):
    base = load_recipe(REPO / "configs" / "cpu_tiny.yaml")
    target = target_source(tmp_path / "reid_raw.json", tmp_path / "imgs")
    kw = dict(corpus=tmp_path / "c", models=["cap-a"], target=target, seed=0, epochs=2, mask_ratio=0.15, out=tmp_path)
    plain = pretrain_recipe(base, ARMS_BY_NAME["tde-em"], **kw)
    tuned = pretrain_recipe(base, ARMS_BY_NAME["tde-em"], **kw,
                            overrides=["optim.lr=5e-4", "method.params.temperature=0.02"])
    assert plain.optim.lr == base.optim.lr == 1e-3 and plain.method.params["temperature"] == 0.05
    assert tuned.optim.lr == 5e-4 and tuned.method.params["temperature"] == 0.02
    assert tuned.method.params["masking"] == "em" and tuned.data.corpus.kinds == ["static", "dynamic"]
    ft = finetune_recipe(base, ARMS_BY_NAME["tde-em"], pretrained=None, target=target, seed=0, epochs=2, out=tmp_path)
    assert ft.optim.lr == 1e-3 and ft.method.params["temperature"] == 0.05
    with pytest.raises(ConfigError, match="temprature"):
        pretrain_recipe(base, ARMS_BY_NAME["tde-em"], **kw, overrides=["method.params.temprature=0.02"])
    with pytest.raises(ConfigError, match="pretrain_overrides"):
        pretrain_recipe(base, ARMS_BY_NAME["tde-em"], **kw, overrides=["optim.lrr=5e-4"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        ReproConfig.model_validate({"recipe": REPO / "configs" / "cpu_tiny.yaml", "pretrain_overrides": ["lr"]})


def _rec(arm: str, seed: int, r1: float, setting: str = "direct") -> dict:
    return {"arm": arm, "seed": seed, setting: {"R1": r1, "R5": r1, "R10": r1, "mAP": r1, "mINP": r1}}


def test_directions_say_whether_each_claim_holds():
    recs = [_rec("none", s, 2.0 + s) for s in range(3)] + [_rec("static-em", s, 30.0 + s) for s in range(3)]
    recs += [_rec("tde-em", s, 30.5 + s) for s in range(3)] + [_rec("tde-nam", s, 25.0) for s in range(3)]
    stats = {k: aggregate(recs, k) for k in ("direct", "finetune", "clothes_change")}
    verdict = {v["claim"]: v["status"] for v in directions(stats)}
    assert verdict["MLLM-corpus pretraining beats no pretraining (direct transfer)"] == "holds (clear)"
    assert verdict["Adding dynamic (TDE) captions helps (direct transfer)"] == "holds (within noise)"
    assert verdict["NAM beats equal masking (direct transfer)"] == "does not hold"
    assert verdict["NAM beats equal masking on noisy captions (direct transfer)"] == "not run"
    md = markdown(stats, directions(stats), select_arms([]), {"clean": ["cap-a"]}, 1.0, {"seeds": 3})
    assert "| Static text, EM | ✓ |" in md and "31.0 ± 1.0" in md and "does not hold" in md
    assert "captioners of the arm's corpus (clean: cap-a)." in md  # no empty noisy list when none ran
    both = markdown(stats, directions(stats), select_arms([]), {"clean": ["cap-a"], "noisy": ["cap-n"]}, 1.0, {})
    assert "(clean: cap-a; noisy: cap-n)." in both


def test_a_winner_at_chance_is_not_evidence(tmp_path):
    """Two models that learned nothing (R1 at chance) make no verdict on a claim, whichever wins by luck."""
    recs = [_rec("bdam", s, 1.6 + 0.3 * s, "clothes_change") for s in range(3)]  # 1.9 ± 0.3
    recs += [_rec("plain", s, 1.7, "clothes_change") for s in range(3)]
    for r in recs:
        r["clothes_change"]["chance_R1"] = 1.7
    claim = "BDAM identity features beat the plain dual encoder under clothes change"
    stats = {k: aggregate(recs, k) for k in ("direct", "finetune", "clothes_change")}
    assert {v["claim"]: v["status"] for v in directions(stats)}[claim].startswith("holds")  # without chance
    payload = write_outputs(tmp_path, recs, select_arms([]), {"clean": ["cap-a"]}, 1.0, {"seeds": 3})
    verdict = {v["claim"]: v for v in payload["directions"]}[claim]
    assert verdict["status"] == "not informative (at chance)" and verdict["chance_R1"] == pytest.approx(1.7)
    assert "Chance R1 ≈ 1.7." in (tmp_path / "table.md").read_text()
    for r in recs:  # a winner above chance is judged as before
        r["clothes_change"]["chance_R1"] = 0.5
    payload = write_outputs(tmp_path, recs, select_arms([]), {"clean": ["cap-a"]}, 1.0, {"seeds": 3})
    assert {v["claim"]: v["status"] for v in payload["directions"]}[claim].startswith("holds")


def test_a_finished_run_is_reused_only_for_the_same_recipe(tmp_path):
    from pedes_core.configuration import save_resolved
    from training.repro.runs import finished_run

    base = load_recipe(REPO / "configs" / "cpu_tiny.yaml")
    target = target_source(tmp_path / "reid_raw.json", tmp_path / "imgs")
    kw = dict(corpus=tmp_path / "c", models=["cap-a"], target=target, seed=0, epochs=2, mask_ratio=0.15,
              out=tmp_path / "runs")
    recipe = pretrain_recipe(base, ARMS_BY_NAME["tde-em"], **kw)
    run = tmp_path / "runs" / "pretrain-tde-em-s0-20261203-120000"
    run.mkdir(parents=True)
    save_resolved(recipe, run)
    (run / "results.json").write_text(json.dumps({"run_dir": str(run)}))
    assert finished_run(recipe) == {"run_dir": str(run)}
    # the same arm and seed with another pretraining rate is a new run, not the stale result
    assert finished_run(pretrain_recipe(base, ARMS_BY_NAME["tde-em"], **kw, overrides=["optim.lr=5e-4"])) is None
    assert finished_run(pretrain_recipe(base, ARMS_BY_NAME["tde-em"], **{**kw, "seed": 1})) is None
    (run / "config.resolved.yaml").unlink()  # a run without its resolved recipe cannot be told apart: retrained
    assert finished_run(recipe) is None
