"""Does the captioner's vision tower see an attribute? Held-out accuracy of the vision stage's auxiliary
attribute head, per attribute — the ceiling of what the language model can read from the image tokens.

    .venv/bin/python benchmarks/probe_captioner_tower.py --model MODEL_DIR --vision-cache VISION_PT \
        --heldout SYNTH_DIR [--images 400] [--json-out F]

``MODEL_DIR`` is a trained captioner (its config gives the tower's shape and the processor),
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
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from caption_gen.captioner.aux_heads import build_aux_head
    from caption_gen.captioner.examples import AUX_ATTRIBUTES, aux_labels
    from caption_gen.captioner.records import load_records

    stamp = json.loads((args.model / "captioner.json").read_text())
    processor = AutoProcessor.from_pretrained(args.model)
    model = LlavaForConditionalGeneration.from_pretrained(args.model)
    saved = torch.load(args.vision_cache, map_location="cpu", weights_only=True)
    model.model.vision_tower.load_state_dict(saved["vision_tower"])
    model.model.multi_modal_projector.load_state_dict(saved["projector"])
    vision = model.config.vision_config
    n_tokens = (vision.image_size // vision.patch_size) ** 2
    head = build_aux_head(stamp["config"]["aux_head"], n_tokens, model.config.text_config.hidden_size,
                          [len(v) for v in AUX_ATTRIBUTES.values()])
    head.load_state_dict(saved["aux_head"])
    records = load_records(args.heldout, None)[:args.images]
    labels = torch.tensor([aux_labels(r) for r in records])
    correct = torch.zeros(len(AUX_ATTRIBUTES))
    model.eval()
    with torch.no_grad():
        for start in range(0, len(records), 128):
            part = records[start:start + 128]
            pixels = processor.image_processor(images=[Image.open(r.path).convert("RGB") for r in part],
                                               return_tensors="pt")["pixel_values"]
            tokens = model.model.vision_tower(pixel_values=pixels).last_hidden_state[:, 1:]
            logits = head(model.model.multi_modal_projector(tokens))
            target = labels[start:start + len(part)]
            correct += torch.tensor([float((lg.argmax(-1) == target[:, j]).sum()) for j, lg in enumerate(logits)])
    accuracy = {name: round(float(c) / len(records), 4) for name, c in zip(AUX_ATTRIBUTES, correct, strict=True)}
    report = {"model": str(args.model), "vision_cache": str(args.vision_cache), "heldout": str(args.heldout),
              "images": len(records), "tower": {"image_size": vision.image_size, "patch_size": vision.patch_size,
                                                "hidden": vision.hidden_size, "layers": vision.num_hidden_layers},
              "accuracy": accuracy}
    print(json.dumps(report))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
