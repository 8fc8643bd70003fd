"""A trained run as an open_clip model folder that outlives this project (docs/export.md).

``pedes export open-clip RUN_DIR --out DIR`` writes

* ``open_clip_config.json``: ``model_cfg`` (the CLIP towers as trained: the vision tower's ``image_size``
  is the recipe's, e.g. 384×128 of seed 002 §4.2, so the position embeddings load unchanged) and
  ``preprocess_cfg`` (size, CLIP mean/std, bilinear squash resize as the test transform does), plus a
  ``pedes`` section open_clip ignores: patch size and stride, the source checkpoint, method and recipe;
* ``open_clip_model.safetensors``: the state dict of the CLIP model (heads of the training method — ID
  classifier, MLM decoder, … — are not part of it);

so that ``open_clip.create_model_and_transforms("local-dir:DIR")`` and ``open_clip.get_tokenizer("local-dir:DIR")``
load it with nothing of ours installed. The features are those of the method's backbone
(``ClipBackbone.encode_image`` / ``encode_text``: [CLS] and [EOS] tokens through the final LayerNorm and
projection), which is what open_clip's ``encode_image`` / ``encode_text`` compute.

Limit: open_clip's ViT has no patch stride option, so a model trained with overlapping patches
(``model.stride`` < patch size) cannot be expressed; such a run is refused with a
:class:`~pedes_core.errors.ConfigError` instead of exporting a model that computes something else.
Only methods built on the CLIP dual encoder (``sdm``, ``nam_sdm``, ``irra``, ``sew_mcm``, …; not BDAM's
ViT + BERT encoders) can be exported.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pedes_core.errors import ConfigError

CONFIG_NAME = "open_clip_config.json"
WEIGHTS_NAME = "open_clip_model.safetensors"


@dataclass
class OpenClipExport:
    out: Path
    config_path: Path
    weights_path: Path
    checkpoint: Path
    image_size: tuple[int, int]
    embed_dim: int


def export_open_clip(run: str | Path, out: str | Path) -> OpenClipExport:
    """Export the CLIP dual encoder of ``run`` (a run directory or a checkpoint file) to ``out``."""
    import torch
    from safetensors.torch import save_file

    from training.models.clip_backbone import ClipBackbone, open_clip_model_config
    from training.protocol import load_trained_method, resolve_checkpoint

    checkpoint = resolve_checkpoint(run)
    method, recipe = load_trained_method(checkpoint, "cpu")
    backbone = getattr(method, "backbone", None)
    if not isinstance(backbone, ClipBackbone):
        raise ConfigError(f"{checkpoint}: method {recipe.method.name!r} has no CLIP dual encoder to export "
                          "(only methods built on training.models.clip_backbone)")
    mc = recipe.model
    if backbone.config.stride != backbone.patch_size:
        raise ConfigError(
            f"{checkpoint}: model.stride {backbone.config.stride} < patch size {backbone.patch_size} (overlapping "
            "patches); open_clip's ViT cannot express a patch stride, so this model cannot be exported for open_clip"
        )
    model_cfg = copy.deepcopy(open_clip_model_config(mc, method.tokenizer.vocab_size))
    model_cfg["vision_cfg"]["image_size"] = list(mc.image_size)
    augment = recipe.data.augment
    preprocess_cfg = {
        "size": list(mc.image_size),
        "mode": "RGB",
        "mean": list(augment.mean),
        "std": list(augment.std),
        "interpolation": "bilinear",
        "resize_mode": "squash",
    }
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in backbone.clip.state_dict().items()}
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    weights = target / WEIGHTS_NAME
    tmp = weights.with_name(weights.name + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.replace(weights)
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    config: dict[str, Any] = {
        "model_cfg": model_cfg,
        "preprocess_cfg": preprocess_cfg,
        "pedes": {
            "image_size": list(mc.image_size),  # (height, width)
            "patch_size": backbone.patch_size,
            "patch_stride": backbone.config.stride,
            "grid": list(backbone.grid),
            "context_length": mc.context_length,
            "embed_dim": backbone.embed_dim,
            "features": "image: [CLS] after ln_post @ proj; text: [EOS] after ln_final @ text_projection",
            "method": recipe.method.name,
            "arch": mc.arch,
            "checkpoint": checkpoint.name,
            "weights_sha256": sha,
            "torch": torch.__version__,
        },
    }
    config_path = target / CONFIG_NAME
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return OpenClipExport(out=target, config_path=config_path, weights_path=weights, checkpoint=checkpoint,
                          image_size=tuple(mc.image_size), embed_dim=backbone.embed_dim)
