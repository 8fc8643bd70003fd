"""Training examples: (image, instruction of one kind, target) → a captioner training batch.

The prompt of every (kind, template) is rendered exactly as the captioning engine renders it
(:class:`caption_gen.instructions.bank.InstructionSet`, chat template, ``<image>`` expanded by the
processor), tokenized once and reused; only the target is tokenized per example. Labels are ``-100``
on the prompt, so the loss is on the answer and its ``</s>``.
"""

from __future__ import annotations

from collections.abc import Callable
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


def engine_prompts(instructions: InstructionSet, processor: Any, image: Any) -> list[Prompt]:
    """Every prompt the engine can send: static, identity, clothing, and dynamic × each template, with the
    image tokens the processor gives ``image`` (a training image: Qwen2-VL's count depends on its size)."""
    out: list[Prompt] = []
    for kind in KINDS:
        variants: list[Template | None] = list(instructions.templates) if kind == "dynamic" else [None]
        for tpl in variants:
            ins = instructions.render(kind, image_id="-", seed=0,
                                      template_id=tpl.template_id if tpl is not None else None)
            conv = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": ins.text}]}]
            text = processor.tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
            ids = processor(text=text, images=image, return_tensors="np")["input_ids"][0].tolist()
            out.append(Prompt(kind, tpl, ids))
    return out


class BatchSampler:
    """Draws training batches: image, kind (by weight), template, phrasing and noise per example."""

    def __init__(self, records: list[ImageRecord], pixels: Any, prompts: list[Prompt], tokenizer: Any, *,
                 kind_weights: list[float], noise: float, seed: int, image_token: int,
                 mirror: Callable[[Any], Any]):
        self.records = records
        self.pixels = pixels
        #: the architecture's left–right mirror of processed pixels (:meth:`CaptionerArch.mirror`)
        self.mirror = mirror
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
        self.prefix_len = shared_prefix_length(prompts, image_token)
        #: the prompts' common prefix (every image token in it), for the language model's positions
        self.prefix_ids = prompts[0].input_ids[:self.prefix_len]

    def sample_images(self, batch_size: int, hflip: float = 0.0) -> tuple[Any, Any]:
        """Images and their auxiliary labels only (the vision stage); each image mirrored left–right with
        probability ``hflip`` (no attribute has a side, so the labels stay)."""
        import torch

        idx = self.image_rng.integers(len(self.aux), size=batch_size)
        pixels = self.pixels_of(idx)
        if hflip > 0:
            flip = torch.as_tensor(self.image_rng.random(batch_size) < hflip)
            pixels[flip] = self.mirror(pixels[flip])
        return pixels, torch.as_tensor(self.aux[idx])

    def pixels_of(self, idx: Any) -> Any:
        """The float32 pixels of the images ``idx`` (stored in the cache dtype)."""
        import torch

        return self.pixels[torch.as_tensor(idx)].float()

    def _example(self, rec: ImageRecord) -> tuple[Prompt, list[int]]:
        """One drawn (kind by weight, template, phrasing, noise) prompt and its answer ids (ending ``</s>``)."""
        kind = KINDS[int(self.rng.choice(len(KINDS), p=self.kind_p))]
        prompt = self.by_kind[kind][int(self.rng.integers(len(self.by_kind[kind])))]
        ident, outfit, _ = corrupt(rec.identity, rec.outfit, self.noise, self.rng)
        text = target_text(kind, ident, outfit, rng=self.rng, template=prompt.template)
        return prompt, self.tokenizer(" " + text, add_special_tokens=False)["input_ids"] + [self.eos]

    def sample(self, batch_size: int, per_image: int = 1) -> dict[str, Any]:
        """``batch_size`` examples of ``batch_size // per_image`` images, packed (:func:`pack_examples`):
        each image's prefix once, then ``per_image`` independently drawn (instruction, answer)
        continuations that attend to it and to themselves only. ``index`` names the images (their
        features or :meth:`pixels_of`); no pixels are gathered here, a cached-feature step needs none."""

        idx, rows = self._rows(1, batch_size, per_image)
        return self._batch(rows, idx)

    def sample_by_length(self, steps: int, batch_size: int, per_image: int = 1) -> list[dict[str, Any]]:
        """The examples of ``steps`` batches drawn at once (as :meth:`sample` draws them), their rows sorted
        by length and cut into ``steps`` batches, returned in a shuffled order: a batch pads to its longest
        row, and the dynamic kind's written-out TDE templates make rows of 40–120 tokens, so batches of
        similar rows spend fewer positions on padding (transformers' ``group_by_length``). Which examples
        are drawn does not change, only which of them share a step; ``steps`` 1 is :meth:`sample`."""
        if steps == 1:
            return [self.sample(batch_size, per_image)]
        n = batch_size // per_image
        idx, rows = self._rows(steps, batch_size, per_image)
        size = [sum(len(p.input_ids) - self.prefix_len + len(a) for p, a in row) for row in rows]
        order = np.argsort(size, kind="stable")
        chunks = [order[k * n:(k + 1) * n] for k in range(steps)]
        return [self._batch([rows[j] for j in chunks[k]], idx[chunks[k]]) for k in self.rng.permutation(steps)]

    def _rows(self, steps: int, batch_size: int, per_image: int) -> tuple[Any, list[list[tuple[Prompt, list[int]]]]]:
        """The images of ``steps`` batches and, per image, its ``per_image`` drawn examples."""
        if batch_size % per_image:
            raise ValueError(f"batch_size {batch_size} is not a multiple of per_image {per_image}")
        idx = self.rng.integers(len(self.records), size=steps * (batch_size // per_image))
        return idx, [[self._example(self.records[int(i)]) for _ in range(per_image)] for i in idx]

    def _batch(self, rows: list[list[tuple[Prompt, list[int]]]], idx: Any) -> dict[str, Any]:
        import torch

        packed = pack_examples(rows, self.prefix_len, self.pad)
        return {**packed, "index": torch.as_tensor(idx), "aux": torch.as_tensor(self.aux[idx])}


def shared_prefix_length(prompts: list[Prompt], image_token: int) -> int:
    """Length of the token prefix every prompt starts with (``<s>USER: `` and the image tokens): the part
    of a sequence that depends on the image only. Raises when an image token lies after it."""
    first = prompts[0].input_ids
    n = min(len(p.input_ids) for p in prompts)
    k = next((i for i in range(n) if any(p.input_ids[i] != first[i] for p in prompts)), n)
    if any(image_token in p.input_ids[k:] for p in prompts):
        raise ValueError("the prompts do not share every image token in a common prefix")
    return k


def pack_examples(rows: list[list[tuple[Prompt, list[int]]]], prefix_len: int, pad: int) -> dict[str, Any]:
    """Pack each row — several (prompt, answer) examples of one image — into one sequence: the shared
    prefix once, then each example's rest of prompt + answer. Returns ``input_ids``, ``labels``
    (``-100`` on prompts and padding), ``position_ids`` (each continuation continues from the prefix) and
    a boolean 4-D ``attention_mask`` (True = may attend): the prefix causally, a continuation causally to
    the prefix and to itself, never to another continuation; padding to itself only. The loss over the
    packed rows equals the loss over the examples as separate sequences (same positions, same visible
    tokens), while the image and the prefix are computed once per image instead of once per example."""
    import torch

    seqs, labs, segs, poss = [], [], [], []
    for row in rows:
        prefix = row[0][0].input_ids[:prefix_len]
        ids, lab, seg, pos = list(prefix), [-100] * prefix_len, [0] * prefix_len, list(range(prefix_len))
        for k, (prompt, answer) in enumerate(row, start=1):
            rest = prompt.input_ids[prefix_len:]
            ids += rest + answer
            lab += [-100] * len(rest) + answer
            seg += [k] * (len(rest) + len(answer))
            pos += list(range(prefix_len, prefix_len + len(rest) + len(answer)))
        seqs.append(ids)
        labs.append(lab)
        segs.append(seg)
        poss.append(pos)
    width = max(len(x) for x in seqs)
    b = len(rows)
    ids_t = torch.full((b, width), pad, dtype=torch.long)
    lab_t = torch.full((b, width), -100, dtype=torch.long)
    seg_t = torch.full((b, width), -1, dtype=torch.long)
    pos_t = torch.zeros((b, width), dtype=torch.long)
    for r in range(b):
        n = len(seqs[r])
        ids_t[r, :n], lab_t[r, :n] = torch.tensor(seqs[r]), torch.tensor(labs[r])
        seg_t[r, :n], pos_t[r, :n] = torch.tensor(segs[r]), torch.tensor(poss[r])
    q, k = seg_t.unsqueeze(2), seg_t.unsqueeze(1)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    visible = ((k == 0) | (k == q)) & (q >= 0) & causal
    visible |= torch.eye(width, dtype=torch.bool) & (q < 0)
    return {"input_ids": ids_t, "labels": lab_t, "position_ids": pos_t, "attention_mask": visible.unsqueeze(1)}
