"""NAM has its effect on multi-caption corpora (seed 002 §3.2): every epoch after the first masks
(nearly) every caption from a stored r with ``captions_per_epoch: all``, within n epochs with ``one``;
``nam_coverage`` reaches metrics.jsonl; a scored caption's masking probabilities are not EM's."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from caption_gen.corpus.reader import Corpus
from caption_gen.corpus.rows import caption_row
from caption_gen.corpus.writer import CorpusWriter
from training.config import AugmentConfig, RecipeConfig
from training.data.corpus_dataset import CorpusDataset, CorpusFilter, CorpusIndex, build_corpus_index
from training.data.samplers import GlobalBatchSampler, random_order
from training.data.transforms import build_train_transform
from training.nam import NoiseStore, equal_masking_probabilities

COLOURS = ["red", "blue", "green", "black", "white", "yellow"]


def make_corpus(root: Path, n_images: int, captions_per_image: int) -> Path:
    """``n_images`` two-colour images with ``captions_per_image`` accepted captions each (static/dynamic ×
    two models, as seed 002's four captions per image) and one rejected caption."""
    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    writer = CorpusWriter(root / "corpus", image_root=str(images))
    stamp = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    variants = [("static", "m1", None), ("dynamic", "m1", "t1"), ("static", "m2", None), ("dynamic", "m2", "t2")]
    rows = []
    for i in range(n_images):
        top, bottom = COLOURS[i % 6], COLOURS[(i // 6 + 1 + i) % 6]
        arr = np.zeros((64, 32, 3), dtype=np.uint8)
        arr[:32] = rng.integers(0, 255, 3)
        arr[32:] = rng.integers(0, 255, 3)
        rel = f"p{i:03d}.png"
        Image.fromarray(arr).save(images / rel)
        sha = hashlib.sha256((images / rel).read_bytes()).hexdigest()
        base = dict(image_id=sha[:20], image_path=rel, image_sha256=sha, width=32, height=64, created_at=stamp)
        for c in range(captions_per_image):
            kind, model, template = variants[c % 4]
            rows.append(caption_row(**base, kind=kind, model=model, template_id=template,
                                    caption=f"caption {c}: a person in a {top} shirt and {bottom} trousers"))
        rows.append(caption_row(**base, kind="static", model="m3", caption="sorry",
                                validation={"passed": False, "reasons": ["refusal"]}))
    writer.write_shard(0, rows)
    writer.finalize(name=f"nam-{captions_per_image}")
    return root / "corpus"


def _dataset(corpus_root: Path, tmp_path: Path, mode: str) -> CorpusDataset:
    corpus = Corpus.open(corpus_root)
    index = CorpusIndex(build_corpus_index(corpus, CorpusFilter(), tmp_path / "cache"))
    transform = build_train_transform((64, 32), AugmentConfig(crop_padding=2))
    return CorpusDataset(index, corpus.image_root(), transform, seed=0, captions_per_epoch=mode)


def simulate_coverage(dataset: CorpusDataset, store: NoiseStore, epochs: int, batch: int) -> list[float]:
    """The engine's data path without the model: per epoch, the batch sampler's caption ids are read
    (masking) then written (new r) in the store; returns the store's ``nam_coverage`` per epoch."""
    sampler = GlobalBatchSampler(lambda e: random_order(len(dataset), 0, e), len(dataset), batch)
    coverage = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        store.start_epoch(epoch)
        for items in sampler:
            ids = torch.tensor([dataset.caption_row(k) for k in items])
            store.read(ids)
            store.write(ids, torch.rand(len(ids), store.context_length))
        store.end_epoch()
        coverage.append(store.last_coverage)
    return coverage


@pytest.mark.parametrize("n", [2, 4])
def test_all_captions_per_epoch_scores_every_caption_every_epoch(tmp_path, n) -> None:
    ds = _dataset(make_corpus(tmp_path, 20, n), tmp_path, "all")
    assert len(ds) == 20 * n and ds.num_images == 20
    assert sorted(ds.caption_row(k) for k in range(len(ds))) == list(range(20 * n))  # each caption once
    coverage = simulate_coverage(ds, NoiseStore(20 * n, 8, tmp_path / "store"), 3, batch=4)
    assert coverage[0] == 0.0  # epoch 0 masks with p (nothing stored yet)
    assert min(coverage[1:]) >= 0.95


@pytest.mark.parametrize("n", [2, 4])
def test_one_caption_per_epoch_reaches_full_coverage_within_n_epochs(tmp_path, n) -> None:
    ds = _dataset(make_corpus(tmp_path, 20, n), tmp_path, "one")
    assert len(ds) == 20
    coverage = simulate_coverage(ds, NoiseStore(20 * n, 8, tmp_path / "store"), n + 2, batch=4)
    assert coverage[:n] == [0.0] * n  # caption (e + i) mod n was never visited before epoch n
    assert min(coverage[n:]) >= 0.95  # from epoch n on, each caption reuses its r from n epochs earlier


def test_items_of_all_map_to_their_image_and_caption(tmp_path) -> None:
    ds = _dataset(make_corpus(tmp_path, 6, 4), tmp_path, "all")
    items = [ds[k] for k in range(4, 8)]  # the four items of split image 1
    assert {it["person_id"] for it in items} == {1} and len({it["image_index"] for it in items}) == 1
    assert sorted(it["caption"].split(":")[0] for it in items) == [f"caption {c}" for c in range(4)]
    assert len({it["caption"].split(":")[1] for it in items}) == 1  # all describe that image
    assert [it["caption_id"] for it in items] == [ds.caption_row(k) for k in range(4, 8)]
    # two captions of one image get separate augmentation draws
    assert any(not torch.equal(ds[4 * i]["image"], ds[4 * i + 1]["image"]) for i in range(6))
    with pytest.raises(IndexError):
        ds.locate(len(ds))


def _recipe(corpus: Path, out: Path, mode: str, epochs: int) -> RecipeConfig:
    return RecipeConfig.model_validate({
        "model": {"arch": "tiny", "image_size": [64, 32], "vision": {"width": 32, "layers": 2, "head_width": 16}, "text": {"width": 32, "layers": 2}, 
                  "embed_dim": 32, "nam_layer": 1},
        "method": {"name": "nam_sdm", "params": {"masking": "nam"}},
        "data": {"corpus": {"root": str(corpus)}, "batch_size": 8, "num_workers": 0, "val_fraction": 0.0,
                 "captions_per_epoch": mode, "augment": {"crop_padding": 2}},
        "optim": {"name": "adamw", "lr": 1e-3},
        "schedule": {"epochs": epochs, "warmup_epochs": 0.0},
        "engine": {"device": "cpu", "output_dir": str(out), "run_name": "nam", "checkpoint_every_steps": 1000,
                   "log_every_steps": 1000, "progress": False, "tensorboard": False},
        "eval": {"cmc_plot": False},
    })


def _coverage_records(run_dir: Path) -> list[float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["nam_coverage"] for r in records if r["type"] == "epoch"]


def test_pedes_train_logs_nam_coverage_and_masks_from_r(tmp_path, caplog) -> None:
    """Through the trainer on a 4-caption corpus: ``all`` → coverage ≥ 0.95 from the second epoch and the
    scored captions' probabilities are NAM's, not EM's; ``one`` → coverage 0 and one warning (not one per
    epoch)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from training.engine.trainer import Trainer

    corpus = make_corpus(tmp_path / "c", 16, 4)
    recipe = _recipe(corpus, tmp_path / "all", "all", 2)
    recipe.engine.tensorboard = True
    trainer = Trainer(recipe)
    result = trainer.fit()
    coverage = _coverage_records(result.run_dir)
    assert len(coverage) == 2 and coverage[0] == 0.0 and coverage[1] >= 0.95
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    assert [e.value for e in events.Scalars("epoch/nam_coverage")] == pytest.approx(coverage)
    assert result.results["data"]["samples_per_epoch"] == 64

    method, tokenizer = trainer.method, trainer.tokenizer
    method.on_epoch_start(2)
    ds = trainer.data.dataset
    ids = torch.tensor([ds.caption_row(k) for k in range(8)])
    tokens = tokenizer([ds[k]["caption"] for k in range(8)])
    nam = method.masking_probabilities_for(tokens, ids)
    em = equal_masking_probabilities(tokenizer.word_token_mask(tokens), 0.15)
    assert (nam - em).abs().amax(dim=1).min() > 1e-3  # every scored caption: NAM probabilities ≠ p

    caplog.set_level(logging.WARNING, logger="training.engine.trainer")
    one = Trainer(_recipe(corpus, tmp_path / "one", "one", 3)).fit()
    assert _coverage_records(one.run_dir) == [0.0, 0.0, 0.0]  # 4 captions: no caption is seen twice yet
    warnings = [r for r in caplog.records if "nam_coverage" in r.getMessage() or "stored r" in r.getMessage()]
    assert len(warnings) == 1 and "captions_per_epoch" in warnings[0].getMessage()


def test_ddp_two_ranks_merge_the_store_like_one_process(tmp_path) -> None:
    """2 gloo ranks (batch 4 each) vs 1 process (batch 4 × 2 accumulation): the rank shards merge into
    the same latest-r store — same nam_coverage, same loss trajectory, same final NAM state."""
    import os
    import shutil
    import subprocess
    import sys

    import yaml

    from training.engine.trainer import train

    pedes = shutil.which("pedes", path=str(Path(sys.executable).parent)) or shutil.which("pedes")
    if pedes is None:
        pytest.skip("the pedes console script is not installed")
    corpus = make_corpus(tmp_path / "c", 16, 4)
    # a small LR: Adam turns float-order differences of near-zero gradients (1 vs 2 processes, thread
    # counts) into ±lr steps, which lr 1e-3 amplifies into visible loss differences within a few steps
    single_recipe = _recipe(corpus, tmp_path / "single", "all", 2)
    single_recipe.data.batch_size = 4
    single_recipe.optim.lr = 1e-5
    single_recipe.engine.accumulation_steps = 2
    single_recipe.engine.log_every_steps = 1
    single = train(single_recipe)

    ddp_recipe = _recipe(corpus, tmp_path / "ddp", "all", 2)
    ddp_recipe.data.batch_size = 4
    ddp_recipe.optim.lr = 1e-5
    ddp_recipe.engine.log_every_steps = 1
    recipe_file = tmp_path / "ddp.yaml"
    recipe_file.write_text(yaml.safe_dump(ddp_recipe.model_dump(mode="json")))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           pedes, "train", "--config", str(recipe_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (ddp_run,) = list((tmp_path / "ddp").iterdir())

    assert _coverage_records(ddp_run) == _coverage_records(single.run_dir)
    assert _coverage_records(ddp_run)[1] >= 0.95

    def losses(run: Path) -> list[float]:
        recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in recs if r["type"] == "train"]

    assert losses(ddp_run) == pytest.approx(losses(single.run_dir), rel=1e-3, abs=1e-4)
    stores = []
    for run in (single.run_dir, ddp_run):  # the merged store after the last epoch, as the next epoch reads it
        store = NoiseStore(64, 77, run)
        assert not list(store.directory.glob("*rank*"))  # shards merged and removed
        store.start_epoch(2)
        stores.append(store)
    ids = torch.arange(64)
    assert stores[0].source_epochs(ids).tolist() == stores[1].source_epochs(ids).tolist() == [1] * 64
    torch.testing.assert_close(stores[1].read(ids)[0], stores[0].read(ids)[0], rtol=0, atol=2e-2)


def test_the_pretraining_recipe_visits_every_caption_each_epoch() -> None:
    from training.config import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[3] / "configs" / "pretrain_nam.yaml")
    assert recipe.method.name == "nam_sdm" and recipe.data.captions_per_epoch == "all"
