"""Training examples: (image, instruction of one kind, target) → a LLaVA training batch.

The prompt of every (kind, template) is rendered exactly as the captioning engine renders it
(:class:`caption_gen.instructions.bank.InstructionSet`, chat template, ``<image>`` expanded by the
processor), tokenized once and reused; only the target is tokenized per example. Labels are ``-100``
on the prompt, so the loss is on the answer and its ``</s>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from caption_gen.captioner.noise import corrupt
from caption_gen.captioner.records import ImageRecord
from caption_gen.captioner.targets import target_text
from caption_gen.instructions.bank import KINDS, InstructionSet
from caption_gen.instructions.slots import Template
from caption_gen.synth.attributes import (
    BAG_COLORS,
    BAG_TYPES,
    BUILDS,
    HAIR_COLORS,
    HEIGHTS,
    PALETTE,
    SHOE_COLORS,
    SKIN_TONES,
    TOP_TYPES,
)

#: Attributes of the auxiliary classification loss and their classes.
AUX_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "gender": ("man", "woman"),
    "hair_style": ("short", "long", "ponytail", "bun", "bald"),
    "hair_color": ("none", *HAIR_COLORS),
    "skin": tuple(SKIN_TONES),
    "height": tuple(HEIGHTS),
    "build": tuple(BUILDS),
    "top_type": TOP_TYPES,
    "top_color": tuple(PALETTE),
    "bottom_type": ("trousers", "shorts", "skirt", "long skirt"),
    "bottom_color": tuple(PALETTE),
    "shoes_color": SHOE_COLORS,
    "bag": BAG_TYPES,
    "bag_color": ("none", *BAG_COLORS),
}


def aux_labels(rec: ImageRecord) -> list[int]:
    values = {**rec.identity.to_dict(), **rec.outfit.to_dict()}
    values["bag_color"] = values["bag_color"] or "none"
    return [AUX_ATTRIBUTES[a].index(values[a]) for a in AUX_ATTRIBUTES]


@dataclass(frozen=True)
class Prompt:
    kind: str
    template: Template | None
    input_ids: list[int]


def engine_prompts(instructions: InstructionSet, processor: Any, image_size: int) -> list[Prompt]:
    """Every prompt the engine can send: static, identity, clothing, and dynamic × each template."""
    from PIL import Image

    dummy = Image.new("RGB", (image_size, image_size))
    out: list[Prompt] = []
    for kind in KINDS:
        variants: list[Template | None] = list(instructions.templates) if kind == "dynamic" else [None]
        for tpl in variants:
            ins = instructions.render(kind, image_id="-", seed=0,
                                      template_id=tpl.template_id if tpl is not None else None)
            conv = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": ins.text}]}]
            text = processor.tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
            ids = processor(text=text, images=dummy, return_tensors="np")["input_ids"][0].tolist()
            out.append(Prompt(kind, tpl, ids))
    return out


class BatchSampler:
    """Draws training batches: image, kind (by weight), template, phrasing and noise per example."""

    def __init__(self, records: list[ImageRecord], pixels: Any, prompts: list[Prompt], tokenizer: Any, *,
                 kind_weights: list[float], noise: float, seed: int):
        self.records = records
        self.pixels = pixels
        self.tokenizer = tokenizer
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        #: the vision stage's own generator, so the joint stage draws the same examples whether the vision
        #: stage ran or was reused from the cache (:func:`caption_gen.captioner.train._vision_stage`)
        self.image_rng = np.random.default_rng([seed, 1])
        self.by_kind = {k: [p for p in prompts if p.kind == k] for k in KINDS}
        w = np.asarray(kind_weights, dtype=float)
        self.kind_p = w / w.sum()
        self.aux = np.asarray([aux_labels(r) for r in records], dtype=np.int64)
        self.pad = tokenizer.pad_token_id
        self.eos = tokenizer.eos_token_id

    def sample_images(self, batch_size: int) -> tuple[Any, Any]:
        """Images and their auxiliary labels only (the vision stage)."""
        import torch

        idx = self.image_rng.integers(len(self.aux), size=batch_size)
        return self._pixels(idx), torch.as_tensor(self.aux[idx])

    def _pixels(self, idx: Any) -> Any:
        import torch

        return self.pixels[torch.as_tensor(idx)].float()

    def sample(self, batch_size: int) -> dict[str, Any]:
        import torch

        idx = self.rng.integers(len(self.records), size=batch_size)
        seqs, labels = [], []
        for i in idx:
            rec = self.records[int(i)]
            kind = KINDS[int(self.rng.choice(len(KINDS), p=self.kind_p))]
            prompt = self.by_kind[kind][int(self.rng.integers(len(self.by_kind[kind])))]
            ident, outfit, _ = corrupt(rec.identity, rec.outfit, self.noise, self.rng)
            text = target_text(kind, ident, outfit, rng=self.rng, template=prompt.template)
            answer = self.tokenizer(" " + text, add_special_tokens=False)["input_ids"] + [self.eos]
            seqs.append(prompt.input_ids + answer)
            labels.append([-100] * len(prompt.input_ids) + answer)
        width = max(len(s) for s in seqs)
        ids = torch.full((batch_size, width), self.pad, dtype=torch.long)
        lab = torch.full((batch_size, width), -100, dtype=torch.long)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for r, (s, lb) in enumerate(zip(seqs, labels, strict=True)):
            ids[r, : len(s)] = torch.tensor(s)
            lab[r, : len(lb)] = torch.tensor(lb)
            mask[r, : len(s)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": lab, "pixel_values": self._pixels(idx),
                "index": torch.as_tensor(idx),
                "aux": torch.as_tensor(self.aux[idx])}
