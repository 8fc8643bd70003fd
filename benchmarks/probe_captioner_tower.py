"""Does the captioner's vision tower see an attribute? Held-out accuracy of the vision stage's auxiliary
attribute head, per attribute — the ceiling of what the language model can read from the image tokens.

    .venv/bin/python benchmarks/probe_captioner_tower.py --model MODEL_DIR --vision-cache VISION_PT \
        --heldout SYNTH_DIR [--images 400] [--json-out F]

``MODEL_DIR`` is a trained captioner of either architecture (its ``captioner.json`` gives the architecture and
the tower's shape, its folder the processor),
``VISION_PT`` the vision-stage file its training wrote (``<cache>/captioners/vision-<key>.pt``: tower,
projector and auxiliary head after the vision stage), ``SYNTH_DIR`` a ``pedes synth`` folder of people the
captioner never saw (every split is used). Compare towers by this figure before paying for a joint stage.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--vision-cache", type=Path, required=True)
    parser.add_argument("--heldout", type=Path, required=True)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from PIL import Image
    from transformers import AutoProcessor

    from caption_gen.captioner import CaptionerConfig
    from caption_gen.captioner.architecture import build_arch
    from caption_gen.captioner.aux_heads import build_aux_head
    from caption_gen.captioner.examples import AUX_ATTRIBUTES, aux_labels
    from caption_gen.captioner.records import load_records

    stamp = json.loads((args.model / "captioner.json").read_text())
    cfg = CaptionerConfig.model_validate(stamp["config"])
    arch = build_arch(cfg)
    processor = AutoProcessor.from_pretrained(args.model)
    model = arch.load_model(args.model).eval()
    saved = torch.load(args.vision_cache, map_location="cpu", weights_only=True)
    arch.tower(model).load_state_dict(saved["vision_tower"])
    arch.projector(model).load_state_dict(saved["projector"])
    records = load_records(args.heldout, None)[:args.images]
    labels = torch.tensor([aux_labels(r) for r in records])
    correct = torch.zeros(len(AUX_ATTRIBUTES))
    head = None
    with torch.no_grad():
        for start in range(0, len(records), 128):
            part = records[start:start + 128]
            pixels = arch.image_pixels(processor, [Image.open(r.path).convert("RGB") for r in part],
                                       [str(r.path) for r in part])
            image = arch.project(model, arch.tower_tokens(model, pixels))
            if head is None:
                head = build_aux_head(cfg.aux_head, image.shape[1], image.shape[2], [len(v) for v in AUX_ATTRIBUTES.values()])
                head.load_state_dict(saved["aux_head"])
            logits = head(image)
            target = labels[start:start + len(part)]
            correct += torch.tensor([float((lg.argmax(-1) == target[:, j]).sum()) for j, lg in enumerate(logits)])
    accuracy = {name: round(float(c) / len(records), 4) for name, c in zip(AUX_ATTRIBUTES, correct, strict=True)}
    report = {"model": str(args.model), "vision_cache": str(args.vision_cache), "heldout": str(args.heldout),
              "images": len(records), "tower": {"arch": cfg.arch, "patch_size": cfg.patch_size,
                                                "hidden": cfg.vision_hidden, "layers": cfg.vision_layers},
              "accuracy": accuracy}
    print(json.dumps(report))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
