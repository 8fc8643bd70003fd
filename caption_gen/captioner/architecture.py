"""The captioner's architecture: a standard ``LlavaForConditionalGeneration`` (CLIP vision tower, MLP
projector, Llama text model) that vLLM loads unchanged, at a size that trains on two CPU cores.

Constraints of vLLM's CPU build (``notes/vllm-cpu.md``): the text attention head dim is 64; the saved
vision tower uses the hub layout ``vision_tower.vision_model.*`` (:func:`save_captioner`). Images are
resized (not cropped) to a square ``image_size`` — a 256×128 pedestrian is squashed, head and shoes
stay in view — and every patch is an image token (``vision_feature_layer=-1``, CLS dropped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caption_gen.captioner.vocabulary import CHAT_TEMPLATE

HEAD_DIM = 64


def build_model(tokenizer: Any, *, image_size: int, patch_size: int, vision_hidden: int, vision_layers: int,
                text_hidden: int, text_layers: int, seed: int) -> Any:
    """A randomly initialised LLaVA (seeded) sized by the arguments."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    if text_hidden % HEAD_DIM:
        raise ValueError(f"text_hidden must be a multiple of {HEAD_DIM} (vLLM CPU attention head size)")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<s>", "</s>", "<pad>", "<image>")}
    heads = text_hidden // HEAD_DIM
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=vision_hidden, intermediate_size=2 * vision_hidden,
                                       num_hidden_layers=vision_layers, num_attention_heads=max(1, vision_hidden // 32),
                                       image_size=image_size, patch_size=patch_size, projection_dim=vision_hidden),
        text_config=LlamaConfig(vocab_size=len(tokenizer), hidden_size=text_hidden, intermediate_size=2 * text_hidden,
                                num_hidden_layers=text_layers, num_attention_heads=heads, num_key_value_heads=heads,
                                head_dim=HEAD_DIM, max_position_embeddings=2048, tie_word_embeddings=False,
                                bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"]),
        image_token_index=ids["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    return LlavaForConditionalGeneration(cfg)


def build_processor(tokenizer: Any, image_size: int, patch_size: int) -> Any:
    """``LlavaProcessor``: resize to ``image_size``² without centre crop, CLIP normalisation."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    image_processor = CLIPImageProcessor(size={"height": image_size, "width": image_size}, do_center_crop=False,
                                         crop_size={"height": image_size, "width": image_size})
    return LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=patch_size,
                          vision_feature_select_strategy="default", chat_template=CHAT_TEMPLATE,
                          num_additional_image_tokens=1)


def save_captioner(model: Any, processor: Any, out: Path) -> None:
    """``save_pretrained`` of weights, config, generation config, processor, tokenizer and chat template,
    with the vision tower in the hub layout vLLM expects."""
    from caption_gen.backends.tiny_vlm import hub_layout_vision_tower

    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.eos_token_id = model.config.text_config.eos_token_id
    model.generation_config.pad_token_id = model.config.text_config.pad_token_id
    model.save_pretrained(out)
    hub_layout_vision_tower(out)
    processor.save_pretrained(out)
    processor.tokenizer.save_pretrained(out)
