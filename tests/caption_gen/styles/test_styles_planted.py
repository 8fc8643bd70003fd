"""Style clusters that are styles (seed 000 §3.3): with the defaults of ``pedes styles build``, planted
writing styles are recovered, over-split clusters are merged by the declared rules, every prompt says
what sets its style apart from the corpus, no two prompts of a bank are near-identical, and a build
without CLIP weights says so."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from style_generator import STYLE_NAMES, generate
from typer.testing import CliRunner

from caption_gen.styles import cluster as cl
from caption_gen.styles.bank import load_style_bank
from caption_gen.styles.build import StylesConfig, build_styles
from caption_gen.styles.prompts import SIMILARITY_BOUND, max_pairwise_similarity, prompt_similarity
from flows.cli import app


def _majority(table: pd.DataFrame, planted: list[int], style: int) -> str:
    return table[[p == style for p in planted]]["style_id"].mode()[0]


def test_five_planted_styles_recovered_with_defaults(built_planted5, planted5):
    texts, planted = planted5
    table = pd.read_parquet(built_planted5 / "assignments.parquet")
    assert table["text"].tolist() == texts
    ari = adjusted_rand_score(planted, table["style_id"])
    assert ari >= 0.8, ari
    # one style per planted style (no style split into two equally large halves)
    assert len({_majority(table, planted, s) for s in range(len(STYLE_NAMES))}) == len(STYLE_NAMES)


@pytest.mark.parametrize("per_style,seed,styles", [(30, 3, None), (120, 4, (0, 1, 2, 3)), (80, 5, (1, 2, 3, 4))])
def test_recovery_holds_for_other_sizes_seeds_and_subsets(tmp_path, per_style, seed, styles):
    texts, planted = generate(per_style, seed=seed, styles=styles)
    res = build_styles(StylesConfig(report=False), tmp_path, texts=texts)
    assert adjusted_rand_score(planted, res.labels) >= 0.8
    sims = max_pairwise_similarity([s.prompt for s in load_style_bank(tmp_path).styles])[0]
    assert sims < SIMILARITY_BOUND


def test_over_split_clusters_are_merged_and_counts_reported(built_default, styled_captions, tmp_path):
    """The four-style fixture splits under DBSCAN (one cluster per sentence pattern); the merge rules bring
    it back to four. Without them the same build over-splits (what the rules are for)."""
    summary = json.loads((built_default / "clustering.json").read_text())
    merge = summary["quality"]["merge"]
    assert merge["clusters_found"] > merge["after_prompt_merge"] == summary["quality"]["styles"] == 4
    assert merge["after_stabilization"] >= merge["after_profile_merge"] >= merge["after_prompt_merge"]
    assert merge["profile_merges"] and all(m["distance"] < 0.6 for m in merge["profile_merges"])
    assert merge["min_profile_distance_after"] >= 0.6
    out = (built_default / "cli_output.txt").read_text()
    assert f"clusters: {merge['clusters_found']} found" in out and "→ 4 after merging same-saying prompts" in out

    texts, planted = styled_captions
    off = StylesConfig(report=False)
    off.merge.profile_distance = 0.0
    off.merge.prompt_identity = False
    unmerged = build_styles(off, tmp_path, texts=texts)
    assert unmerged.n_styles > 4
    assert adjusted_rand_score(planted, unmerged.labels) < 0.8


def test_merge_indistinct_rule():
    """Profiles 0.2 sd apart (RMS) merge, 1 sd apart do not; the closest pair goes first."""
    rng = np.random.default_rng(0)
    base = np.zeros(10)
    centres = [base, base + 0.2, base + 1.0, base + 1.1]
    feats = np.concatenate([c + rng.normal(0, 0.01, (20, 10)) for c in centres])
    labels = np.repeat([0, 1, 2, 3], 20)
    out, info = cl.merge_indistinct(labels, feats, profile_distance=0.45)
    assert len(set(out.tolist())) == 2
    assert [round(m["distance"], 1) for m in info["merged"]] == [0.1, 0.2]
    assert info["clusters_before"] == 4 and info["clusters_after"] == 2 and info["min_distance_after"] > 0.45
    assert len(set(out[:40].tolist())) == 1 and len(set(out[40:].tolist())) == 1
    kept, info0 = cl.merge_indistinct(labels, feats, profile_distance=0.0)
    assert len(set(kept.tolist())) == 4 and info0["merged"] == []


def test_prompt_rule_merges_clusters_whose_prompts_say_the_same(tmp_path):
    """Two planted styles that differ only in the separator of a list (', ' vs '; ') get prompts that
    say the same thing; the prompt rule merges them, the profile rule alone would not."""
    rng = np.random.default_rng(1)
    colors = ["red", "blue", "black", "white", "green"]
    garments = ["coat", "jacket", "shirt", "skirt", "jeans"]
    rows = []
    for i in range(120):
        items = [f"{rng.choice(colors)} {rng.choice(garments)}" for _ in range(rng.integers(3, 6))]
        rows.append(("; " if i % 2 else ", ").join(items))
    narrative = [f"The person is wearing a {rng.choice(colors)} {rng.choice(garments)}. They walk slowly. "
                 f"They look ahead." for _ in range(60)]
    texts = rows + narrative
    res = build_styles(StylesConfig(report=False), tmp_path, texts=texts)
    bank = load_style_bank(tmp_path)
    assert res.n_styles == 2, [s.prompt for s in bank.styles]
    sims = [prompt_similarity(a.prompt, b.prompt) for a in bank.styles for b in bank.styles if a is not b]
    assert max(sims) < SIMILARITY_BOUND
    merges = res.summary["quality"]["merge"]["prompt_merges"]
    assert merges and merges[-1]["similarity"] >= SIMILARITY_BOUND
    off = StylesConfig(report=False)
    off.merge.prompt_identity = False
    assert build_styles(off, tmp_path / "off", texts=texts).n_styles == 3  # the profile rule alone keeps 3


def test_prompt_similarity_masks_numbers():
    a = "Unlike most descriptions, keep it short, about 23 words (corpus: 31)."
    assert prompt_similarity(a, a.replace("23", "25")) == pytest.approx(1.0)
    assert prompt_similarity(a, "Write as an eyewitness in the first person.") < 0.3


def test_prompts_state_what_sets_each_style_apart(built_planted5, planted5):
    texts, planted = planted5
    table = pd.read_parquet(built_planted5 / "assignments.parquet")
    bank = load_style_bank(built_planted5).by_id()
    prompts = {name: bank[_majority(table, planted, s)] for s, name in enumerate(STYLE_NAMES)}
    for entry in prompts.values():
        assert entry.prompt.startswith("Unlike most descriptions, ") and "Follow this pattern: \"" in entry.prompt
        assert entry.distinguishing and all(abs(d["z"]) >= 0.5 for d in entry.distinguishing)
        assert "[" in entry.pattern and entry.pattern in entry.prompt  # neutralized exemplar pattern
    feats = {name: {d["feature"] for d in e.distinguishing} for name, e in prompts.items()}
    assert {"verb_rate", "comma_rate", "detail_density"} & feats["attribute_list"]
    assert {"question_share", "exclamation_share"} <= feats["exclamatory"]
    assert {"first_person_rate", "past_tense_rate"} & feats["first_person_past"]
    assert {"participial_opening", "words_per_sentence"} & feats["participial"]
    assert "first person" in prompts["first_person_past"].prompt and "questions" in prompts["exclamatory"].prompt
    # a deviation carries the style's value and the corpus value, and the prompt quotes them
    d = next(d for d in prompts["exclamatory"].distinguishing if d["feature"] == "exclamation_share")
    assert d["value"] > d["corpus"] and f"{d['value_text']} of sentences end with '!', corpus: {d['corpus_text']}" in \
        prompts["exclamatory"].prompt
    best, pair = max_pairwise_similarity([e.prompt for e in bank.values()])
    assert best < SIMILARITY_BOUND, pair


def test_no_near_identical_prompts_on_synthetic_benchmark_captions(tmp_path):
    """The demo's source (the synthetic benchmark's captions: one generator, several phrasings) gives a
    bank whose prompts a reader can tell apart."""
    res = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "synth"), "--identities", "40",
                                   "--images-per-identity", "3", "--seed", "0"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["styles", "build", "--source", str(tmp_path / "synth" / "reid_raw.json"),
                                   "--out", str(tmp_path / "styles"), "--split", "train"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    prompts = [s.prompt for s in load_style_bank(tmp_path / "styles").styles]
    assert len(prompts) >= 2
    assert len(set(prompts)) == len(prompts)
    assert max_pairwise_similarity(prompts)[0] < SIMILARITY_BOUND
    assert all(p.startswith("Unlike most descriptions, ") for p in prompts)


def test_build_without_clip_weights_says_so(built_planted5):
    out = (built_planted5 / "cli_output.txt").read_text()
    assert "features: stylometric + neutralized-text n-gram features (no CLIP weights configured" in out
    summary = json.loads((built_planted5 / "clustering.json").read_text())
    assert summary["features"]["set"] == "stylometric+ngrams" and summary["features"]["clip"] is None
    assert summary["features"]["weights"]["clip"] == 0.0
    for entry in json.loads((built_planted5 / "bank.json").read_text()):
        assert "no CLIP weights configured" in entry["features"]
    meta = json.loads((built_planted5 / "bank.meta.json").read_text())
    assert meta["clip_weights"] is None and meta["features"] == "stylometric+ngrams"
    page = (built_planted5 / "report.html").read_text()
    assert "id='features-note'" in page and "no CLIP weights configured" in page


def test_clip_without_weights_is_refused_and_checkpoint_must_exist(tmp_path):
    from flows.cli import main

    src = tmp_path / "t.txt"
    src.write_text("a red coat\nthe man walks\n")
    for extra, msg in [(["--set", "embedding.features=clip"], "needs CLIP weights"),
                       (["--set", f"embedding.checkpoint={tmp_path / 'missing.pt'}"], "missing.pt")]:
        with pytest.raises(SystemExit) as exc:
            main(["styles", "build", "--source", str(src), "--out", str(tmp_path / "o"), *extra])
        assert exc.value.code == 2, msg


def test_legacy_embed_section_is_accepted(tmp_path):
    cfg_file = tmp_path / "s.yaml"
    cfg_file.write_text("embed:\n  model: ViT-B-32\n  pretrained: null\n")
    from pedes_core.configuration import load_config

    cfg = load_config(StylesConfig, cfg_file, ["embed.w_stylo=0.5"])
    assert cfg.embedding.w_stylo == 0.5 and cfg.embed is cfg.embedding
    assert cfg.embedding.checkpoint is None


@pytest.fixture(scope="module")
def tiny_clip_checkpoint(tmp_path_factory):
    """A tiny open_clip model config registered under ``pedes-tiny-clip`` and its random weights saved as a
    local checkpoint file — stands in for real CLIP weights (no hub download)."""
    open_clip = pytest.importorskip("open_clip")
    import torch

    d = tmp_path_factory.mktemp("tiny_clip")
    (d / "pedes-tiny-clip.json").write_text(json.dumps({
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }))
    open_clip.add_model_config(d / "pedes-tiny-clip.json")
    torch.manual_seed(0)
    model = open_clip.create_model("pedes-tiny-clip", pretrained=None)
    path = d / "tiny_clip.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def test_checkpoint_configured_uses_clip_and_dbscan(tmp_path, tiny_clip_checkpoint, styled_text_file):
    res = CliRunner().invoke(app, ["styles", "build", "--source", str(styled_text_file), "--out", str(tmp_path),
                                   "--set", "embedding.model=pedes-tiny-clip",
                                   "--set", f"embedding.checkpoint={tiny_clip_checkpoint}"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    summary = json.loads((tmp_path / "clustering.json").read_text())
    assert summary["features"]["set"] == "clip" and summary["algorithm"] == "dbscan"
    assert summary["features"]["clip_weights"] == str(tiny_clip_checkpoint)
    assert summary["features"]["weights"] == {"clip": 1.0, "stylometric": 0.0, "ngrams": 0.0}
    assert "tiny_clip.pt" in summary["features"]["clip"] and summary["features"]["embeddings_computed"] > 0
    assert f"CLIP pedes-tiny-clip text embeddings, weights {tiny_clip_checkpoint}" in res.output
    assert "no CLIP weights" not in (tmp_path / "bank.json").read_text()


def test_resolve_features_is_explicit_about_weights(tmp_path):
    from caption_gen.styles.build import EmbedConfig, resolve_features
    from pedes_core.errors import ConfigError

    assert resolve_features(EmbedConfig())[:2] == ("stylometric+ngrams", None)
    assert resolve_features(EmbedConfig(pretrained="openai"))[:2] == ("clip", "openai")
    feats, weights, note = resolve_features(EmbedConfig(features="clip", random_weights=True))
    assert (feats, weights) == ("clip", None) and "RANDOM weights" in note
    assert resolve_features(EmbedConfig(features="stylometric"))[0] == "stylometric"
    with pytest.raises(ConfigError, match="needs CLIP weights"):
        resolve_features(EmbedConfig(features="clip+stylometric+ngrams"))
    with pytest.raises(ConfigError, match="use_clip"):
        resolve_features(EmbedConfig(pretrained="openai", features="clip", use_clip=False))
