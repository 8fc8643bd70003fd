"""The disjoint parts of the miniature world (DESIGN.md §8).

* **source images** — synthetic pedestrians whose identities are used nowhere else; only the image files
  are handed to captioning (the renderer's ground-truth captions stay unused; its ``attributes.jsonl`` is
  kept to *measure* the corpus' caption accuracy, never to train on);
* **target benchmark** — other identities in the CUHK-PEDES layout (train/val/test splits) whose
  ground-truth captions are written in the renderer's held-out phrasings
  (``caption_gen.synth.captions.HELDOUT_PATTERNS``), which no captioner ever produced, so direct transfer
  measures transfer across phrasing as well as across people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from training.repro.config import WorldConfig

SYNTH_MARKER = "synth.json"


@dataclass(frozen=True)
class World:
    source: Path  # synth folder: imgs/ (+ unused reid_raw.json, attributes.jsonl for measurement)
    target: Path  # synth folder in CUHK-PEDES layout with held-out phrasings

    @property
    def source_images(self) -> Path:
        return self.source / "imgs"

    @property
    def target_annotations(self) -> Path:
        return self.target / "reid_raw.json"

    @property
    def target_images(self) -> Path:
        return self.target / "imgs"


def render_once(out: Path, **params: object) -> None:
    """Render unless ``out`` already holds the same rendering (deterministic: same params, same files)."""
    from caption_gen.synth import render_dataset

    marker = out / SYNTH_MARKER
    if marker.is_file():
        done = json.loads(marker.read_text()).get("params", {})
        wanted = {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}
        if all(done.get(k) == v for k, v in wanted.items()):
            return
    render_dataset(out, **params)  # type: ignore[arg-type]


def build_world(cfg: WorldConfig, out: str | Path) -> World:
    """Render (or reuse) the source images and the target benchmark under ``out``."""
    out = Path(out)
    source, target = out / "source", out / "target"
    render_once(source, identities=cfg.source_identities, images_per_identity=cfg.source_images_per_identity,
                 seed=cfg.source_seed, first_id=cfg.source_first_id, size=tuple(cfg.image_size),
                 outfits_per_identity=1, val_fraction=0.0, test_fraction=0.0)
    render_once(target, identities=cfg.target_identities, images_per_identity=cfg.target_images_per_identity,
                 seed=cfg.target_seed, first_id=cfg.target_first_id, size=tuple(cfg.image_size),
                 outfits_per_identity=cfg.target_outfits_per_identity, phrasing="heldout",
                 val_fraction=0.1, test_fraction=cfg.target_test_fraction)
    return World(source=source, target=target)
