"""``qwen2vl``: a standard ``Qwen2VLForConditionalGeneration`` (ViT with 2-D rotary positions, 2 × 2 patch
merger, Qwen2 text model with multimodal RoPE) that vLLM loads unchanged.

Why it exists next to LLaVA: LLaVA gives the language model one token per tower patch, so the tower's
resolution and the LM's sequence length — the joint stage's cost — are tied (``benchmarks/RESULTS.md``,
session 10: a 32-pixel patch is cheap but loses bag, garment type and hair). Qwen2-VL's merger concatenates
each 2 × 2 block of patch features and maps it through an MLP to one LM token: a patch-16 tower with a
quarter of the image tokens. Images keep their aspect ratio (Qwen2-VL's dynamic resolution): each is resized
to the largest multiple of ``patch_size × 2`` per side within ``image_pixels`` pixels — the 256 × 128
pedestrians become 192 × 96, 12 × 6 patches, 18 image tokens (LLaVA's default: 128² squashed, 64 tokens).

Training-side equivalences (tested against the transformers forward, so the served model is what was
trained): the processor repeats a still image over ``temporal_patch_size`` frames; the cache keeps one frame
and :meth:`Qwen2VLArch.tower_tokens` applies the ``Conv3d`` patch embedding — a kernel equal to its stride,
i.e. one dot product per patch — as a linear map with the weights summed over the repeated frames (a
``Conv3d`` backward was 38 % of a vision step on the CPU), and the blocks attend within each image in one
batched call (:func:`_block_of_equal_images`). Packed rows get Qwen2-VL's 3-D positions from
``get_rope_index`` of the shared prefix; the text after it continues on all three axes
(:meth:`Qwen2VLArch.lm_positions`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caption_gen.captioner.architecture import CaptionerArch, check_head_dim, save_with_generation_ids
from pedes_core.errors import InputError

SPECIALS: tuple[str, ...] = ("<unk>", "<s>", "</s>", "<pad>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>",
                             "<|video_pad|>")

#: the same turns as LLaVA's template; the image is Qwen2-VL's ``<|vision_start|><|image_pad|><|vision_end|>``
#: (the processor and vLLM expand ``<|image_pad|>`` to the image's merged tokens).
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: {% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] in ['image', 'image_pil', 'image_url'] %}"
    "<|vision_start|><|image_pad|><|vision_end|>\n"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

#: Qwen2-VL's merger: 2 × 2 patches per language-model token.
MERGE = 2
TEMPORAL_PATCH = 2
#: ``min_pixels`` as a share of the training resolution's pixels: a smaller image of the same aspect ratio is
#: scaled up by √0.98 ≈ 0.99 of the way and rounded up to the same multiple of ``patch_size × 2`` per side.
MIN_PIXEL_SHARE = 0.98
#: a multimodal-RoPE split of the 64-dim heads' 32 frequencies into (time, height, width), as Qwen2-VL's
#: 16 / 24 / 24 of 64 (its heads are 128 wide).
MROPE_SECTION = [8, 12, 12]


class Qwen2VLArch(CaptionerArch):
    name = "qwen2vl"
    model_type = "qwen2_vl"
    specials = SPECIALS
    chat_template = CHAT_TEMPLATE

    def __init__(self, cfg: Any):
        super().__init__(cfg)
        #: ``(1, grid_h, grid_w)`` of the training images, set by :meth:`image_pixels`
        self.grid: tuple[int, int, int] | None = None
        self._prefix: tuple[tuple[int, ...], Any] | None = None

    def build_model(self, tokenizer: Any, seed: int) -> Any:
        import torch
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

        c = self.cfg
        heads = check_head_dim(c.text_hidden)
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
        config = Qwen2VLConfig(
            text_config=dict(vocab_size=len(tokenizer), hidden_size=c.text_hidden, intermediate_size=2 * c.text_hidden,
                             num_hidden_layers=c.text_layers, num_attention_heads=heads, num_key_value_heads=heads,
                             max_position_embeddings=2048, rope_theta=10000.0,
                             rope_scaling={"type": "mrope", "mrope_section": MROPE_SECTION},
                             bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"],
                             tie_word_embeddings=False),
            vision_config=dict(depth=c.vision_layers, embed_dim=c.vision_hidden, hidden_size=c.text_hidden,
                               num_heads=max(1, c.vision_hidden // 32), mlp_ratio=2, patch_size=c.patch_size,
                               spatial_merge_size=MERGE, temporal_patch_size=TEMPORAL_PATCH, in_channels=3),
            image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
            vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
            tie_word_embeddings=False,
        )
        torch.manual_seed(seed)
        return Qwen2VLForConditionalGeneration(config)

    def load_model(self, folder: Path) -> Any:
        from transformers import Qwen2VLForConditionalGeneration

        return Qwen2VLForConditionalGeneration.from_pretrained(folder)

    def build_processor(self, tokenizer: Any, image_size: tuple[int, int]) -> Any:
        """``Qwen2VLProcessor`` with a pixel budget of ``image_pixels`` (aspect kept, CLIP normalisation).

        Its ``min_pixels`` is just under the resolution the training images get (:data:`MIN_PIXEL_SHARE`), so an
        image of the same aspect ratio at any size — the miniature world's 128 × 64 crops as the captioner's
        256 × 128 — is scaled to that resolution and read as the same grid of image tokens (Qwen2-VL's default
        ``min_pixels`` would keep a small image small: other tokens, other positions, and a captioner that
        reads them badly — measured: 31 % attribute accuracy on 128 × 64 images for 89 % at 256 × 128)."""
        from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

        factor = self.cfg.patch_size * MERGE
        height, width = smart_resize(*image_size, factor=factor, min_pixels=factor * factor,
                                     max_pixels=self.cfg.pixel_budget)
        image_processor = Qwen2VLImageProcessor(min_pixels=int(MIN_PIXEL_SHARE * height * width),
                                                max_pixels=self.cfg.pixel_budget, patch_size=self.cfg.patch_size,
                                                merge_size=MERGE, temporal_patch_size=TEMPORAL_PATCH)
        video_processor = Qwen2VLVideoProcessor(patch_size=self.cfg.patch_size, merge_size=MERGE,
                                                temporal_patch_size=TEMPORAL_PATCH)
        return Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
                                chat_template=CHAT_TEMPLATE)

    def image_pixels(self, processor: Any, images: list[Any], names: list[str]) -> Any:
        """``(n, grid_h / 2, grid_w / 2, 2, 2, 3, patch, patch)``: the processor's patch rows (merge blocks
        in row-major order, each block's 2 × 2 patches) of one frame. Every image must give the grid of the
        first one seen (:attr:`grid`)."""
        out = processor.image_processor(images=images, return_tensors="pt")
        grids = [tuple(int(v) for v in g) for g in out["image_grid_thw"]]
        if self.grid is None:
            self.grid = grids[0]
        for name, grid in zip(names, grids, strict=True):
            if grid != self.grid:
                raise InputError(f"{name}: {grid[1]}×{grid[2]} patches after resizing, other training images give "
                                 f"{self.grid[1]}×{self.grid[2]}; the captioner trains on images of one aspect ratio")
        _, gh, gw = self.grid
        p = self.cfg.patch_size
        patches = out["pixel_values"].reshape(len(images), gh // MERGE, gw // MERGE, MERGE, MERGE, 3, TEMPORAL_PATCH, p, p)
        return patches[:, :, :, :, :, :, 0].contiguous()

    def mirror(self, pixels: Any) -> Any:
        """Reverse the image's columns: merge-block column, column within the block, pixel column."""
        return pixels.flip(2, 4, 7)

    def tower(self, model: Any) -> Any:
        import torch

        visual = model.model.visual
        return torch.nn.ModuleList([visual.patch_embed, visual.blocks])

    def projector(self, model: Any) -> Any:
        return model.model.visual.merger

    def tower_tokens(self, model: Any, pixels: Any) -> Any:
        """The blocks' output ``(batch, patches, vision_hidden)`` in the processor's patch order, as
        ``Qwen2VisionTransformerPretrainedModel.forward`` computes it before its merger."""
        import torch
        from transformers.vision_utils import get_vision_position_ids

        visual = model.model.visual
        b, bh, bw = pixels.shape[:3]
        grid = torch.tensor([[1, bh * MERGE, bw * MERGE]])
        weight = visual.patch_embed.proj.weight  # (embed, 3, frames, patch, patch)
        flat = pixels.reshape(b * bh * bw * MERGE * MERGE, -1)
        hidden = torch.nn.functional.linear(flat.to(weight.dtype), weight.sum(dim=2).reshape(len(weight), -1))
        cos, sin = visual.rotary_pos_emb(hidden, get_vision_position_ids(grid[:1], visual.spatial_merge_size))
        rotary = (cos.repeat(b, 1), sin.repeat(b, 1))  # every image has the same grid: one image's, tiled
        for block in visual.blocks:
            hidden = _block_of_equal_images(block, hidden, rotary, b)
        return hidden.reshape(b, bh * bw * MERGE * MERGE, -1)

    def project(self, model: Any, tokens: Any) -> Any:
        merged = model.model.visual.merger(tokens.reshape(-1, tokens.shape[-1]))
        return merged.reshape(len(tokens), -1, merged.shape[-1])

    def lm_positions(self, model: Any, prefix_ids: list[int], positions: Any) -> Any:
        """``(3, batch, length)``: inside the shared prefix, its multimodal-RoPE positions (text on all three
        axes, each image token at its merged row and column); after it, the text goes on from the prefix's
        last position, one step per token (padding reads position 0)."""
        import torch

        if self.grid is None:
            raise RuntimeError("lm_positions needs the training images' grid: call image_pixels first")
        key = tuple(prefix_ids)
        if self._prefix is None or self._prefix[0] != key:
            ids = torch.tensor([prefix_ids])
            types = (ids == self.image_token_id(model)).int()
            pos, _ = model.model.get_rope_index(ids, types, image_grid_thw=torch.tensor([self.grid]))
            self._prefix = (key, pos[:, 0])
        prefix = self._prefix[1]
        n = prefix.shape[1]
        after = positions + (prefix[:, -1] + 1 - n).view(3, 1, 1)
        return torch.where(positions < n, prefix[:, positions.clamp(max=n - 1)], after)

    def save(self, model: Any, processor: Any, out: Path) -> None:
        save_with_generation_ids(model, processor, out)


def _block_of_equal_images(block: Any, hidden: Any, rotary: tuple[Any, Any], images: int) -> Any:
    """``Qwen2VLVisionBlock.forward`` for ``images`` images of one grid: the same pre-norm attention (each
    image's patches attend to that image only, with the 2-D rotary embedding) and MLP, but one batched
    attention call instead of one per image (transformers splits the sequence at ``cu_seqlens``; on the CPU
    those per-image calls and their concatenation cost ≈ 10 % of a vision step)."""
    import torch
    from transformers.models.qwen2_vl.modeling_qwen2_vl import apply_rotary_pos_emb_vision

    attn = block.attn
    x = block.norm1(hidden)
    n = x.shape[0]
    q, k, v = attn.qkv(x).reshape(n, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    q, k = apply_rotary_pos_emb_vision(q, k, *rotary)
    q, k, v = (t.reshape(images, n // images, attn.num_heads, -1).transpose(1, 2) for t in (q, k, v))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=attn.scaling)
    hidden = hidden + attn.proj(out.transpose(1, 2).reshape(n, -1))
    return hidden + block.mlp(block.norm2(hidden))
