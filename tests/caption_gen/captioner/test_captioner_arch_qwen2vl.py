"""The ``qwen2vl`` captioner architecture: what the trainer computes is what transformers' (and so vLLM's)
Qwen2-VL computes — the tower from cached one-frame pixels with a linear patch embedding, the merger, the
multimodal-RoPE positions of packed rows, the mirror — and the config errors of the other arch's fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caption_gen.captioner import CaptionerConfig
from caption_gen.captioner.arch_qwen2vl import Qwen2VLArch
from caption_gen.captioner.examples import pack_examples
from caption_gen.captioner.train import _answer_loss
from pedes_core.errors import InputError

SMALL = dict(arch="qwen2vl", image_pixels=128 * 64 + 100, patch_size=16, vision_hidden=32, vision_layers=1,
             text_hidden=64, text_layers=2, vocab_size=300)


def _images(n: int, size: tuple[int, int] = (128, 256), seed: int = 0) -> list:
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(n)]


@pytest.fixture(scope="module")
def qwen():
    from caption_gen.captioner.vocabulary import train_tokenizer

    arch = Qwen2VLArch(CaptionerConfig(**SMALL))
    corpus = ["a man in a red shirt and blue jeans.", "Describe the person.", "a woman with long hair."] * 20
    tok = train_tokenizer(corpus, 300, specials=arch.specials, chat_template=arch.chat_template)
    processor = arch.build_processor(tok, (256, 128))
    model = arch.build_model(tok, seed=0).eval()
    return arch, processor, model


def test_tower_and_merger_from_cached_pixels_are_the_transformers_forward(qwen):
    arch, processor, model = qwen
    images = _images(3)
    ref_in = processor.image_processor(images=images, return_tensors="pt")
    assert ref_in["image_grid_thw"].tolist() == [[1, 8, 4]] * 3  # 256×128 within 8,292 pixels → 128×64
    pixels = arch.image_pixels(processor, images, ["a", "b", "c"])
    assert pixels.shape == (3, 4, 2, 2, 2, 3, 16, 16)  # one frame kept: half the processor's values
    with torch.no_grad():
        ref = model.model.visual(ref_in["pixel_values"], grid_thw=ref_in["image_grid_thw"]).pooler_output
        ours = arch.project(model, arch.tower_tokens(model, pixels))
    assert ours.shape == (3, 8, 64)
    assert torch.allclose(ours.reshape(-1, 64), ref, atol=1e-5), (ours.reshape(-1, 64) - ref).abs().max()


def test_mirror_is_the_processed_mirrored_image(qwen):
    from PIL import Image

    arch, processor, _ = qwen
    images = _images(2, seed=1)
    pixels = arch.image_pixels(processor, images, ["a", "b"])
    mirrored = arch.image_pixels(processor, [im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for im in images], ["a", "b"])
    assert not torch.allclose(pixels, mirrored, atol=1e-2)
    assert torch.allclose(arch.mirror(pixels), mirrored, atol=1e-4)


def test_a_packed_batch_has_the_models_own_loss_with_multimodal_positions(qwen):
    """Two images, two (instruction, answer) examples each, packed: the loss equals the token-weighted mean of
    ``Qwen2VLForConditionalGeneration``'s own loss on each example from pixels (its 3-D positions from
    ``get_rope_index``), and the positions are that function's."""
    from caption_gen.captioner.examples import Prompt, shared_prefix_length

    arch, processor, model = qwen
    images = _images(2, seed=2)
    pixels = arch.image_pixels(processor, images, ["a", "b"])
    tok = processor.tokenizer
    prompts = []
    for text in ("Describe the person.", "a man in a red shirt?"):
        conv = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        chat = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        prompts.append(Prompt("static", None, processor(text=chat, images=images[0], return_tensors="np")["input_ids"][0].tolist()))
    image_token = arch.image_token_id(model)
    prefix_len = shared_prefix_length(prompts, image_token)
    answers = [tok(" a man in blue jeans.")["input_ids"] + [tok.eos_token_id], tok(" a woman.")["input_ids"] + [tok.eos_token_id]]
    rows = [[(prompts[0], answers[0]), (prompts[1], answers[1])], [(prompts[1], answers[0]), (prompts[0], answers[1])]]
    batch = pack_examples(rows, prefix_len, tok.pad_token_id)
    batch["position_ids"] = arch.lm_positions(model, prompts[0].input_ids[:prefix_len], batch["position_ids"])
    with torch.no_grad():
        tokens = arch.tower_tokens(model, pixels)
        packed, _ = _answer_loss(arch, model, batch, tokens)
        total, count = torch.zeros(()), 0
        for r, row in enumerate(rows):
            inputs = processor.image_processor(images=[images[r]], return_tensors="pt")
            for prompt, answer in row:
                ids = torch.tensor([prompt.input_ids + answer])
                labels = torch.tensor([[-100] * len(prompt.input_ids) + answer])
                out = model(input_ids=ids, labels=labels, pixel_values=inputs["pixel_values"],
                            image_grid_thw=inputs["image_grid_thw"], mm_token_type_ids=(ids == image_token).int())
                total += out.loss * len(answer)
                count += len(answer)
    assert torch.allclose(packed, total / count, atol=1e-4), (packed, total / count)
    # the positions themselves: one example per row, against transformers' get_rope_index of each sequence
    single = pack_examples([[ex] for row in rows for ex in row], prefix_len, tok.pad_token_id)
    ours = arch.lm_positions(model, prompts[0].input_ids[:prefix_len], single["position_ids"])
    real = single["input_ids"] != tok.pad_token_id
    ref, _ = model.model.get_rope_index(single["input_ids"], (single["input_ids"] == image_token).int(),
                                        image_grid_thw=torch.tensor([arch.grid] * 4), attention_mask=real.long())
    assert torch.equal(ours[:, real], ref[:, real])
    assert not torch.equal(ours, single["position_ids"].expand(3, -1, -1))  # image tokens sit on a 2-D grid


def test_an_image_of_the_same_aspect_ratio_at_any_size_gets_the_training_grid(qwen):
    """The processor scales small images up (``min_pixels`` just under the training resolution): a 96 × 48
    crop is read as the same 8 × 4 patches as the 256 × 128 training images (with Qwen2-VL's default
    ``min_pixels`` a 96 × 48 crop would stay 6 × 4)."""
    arch, processor, _ = qwen
    grids = [processor.image_processor(images=_images(1, size=(w, h)), return_tensors="pt")["image_grid_thw"].tolist()
             for h, w in ((256, 128), (128, 64), (96, 48), (64, 32), (180, 90), (512, 256))]
    assert grids == [[[1, 8, 4]]] * 6
    from transformers import Qwen2VLImageProcessor

    default = Qwen2VLImageProcessor(max_pixels=arch.cfg.pixel_budget, patch_size=16, merge_size=2)
    assert default(images=_images(1, size=(48, 96)), return_tensors="pt")["image_grid_thw"].tolist() == [[1, 6, 4]]


def test_training_images_of_another_aspect_ratio_are_an_input_error(qwen):
    arch, processor, _ = qwen
    fresh = Qwen2VLArch(arch.cfg)
    fresh.image_pixels(processor, _images(1), ["first.jpg"])
    with pytest.raises(InputError, match=r"square\.jpg: 4×4 patches after resizing, other training images give 8×4"):
        fresh.image_pixels(processor, _images(1, size=(96, 96)), ["square.jpg"])


def test_resolution_fields_belong_to_their_arch_and_key():
    with pytest.raises(ValueError, match="image_size does not apply to arch 'qwen2vl'"):
        CaptionerConfig(image_size=128)  # the default arch is qwen2vl
    with pytest.raises(ValueError, match="image_pixels does not apply to arch 'llava'"):
        CaptionerConfig(arch="llava", image_pixels=20000)
    llava, qwen = CaptionerConfig(arch="llava"), CaptionerConfig()
    assert llava.cache_key("d") != qwen.cache_key("d") and llava.vision_stage_key("d") != qwen.vision_stage_key("d")
    assert qwen.cache_key("d") != CaptionerConfig(image_pixels=9000).cache_key("d")
    assert qwen.cache_key("d") == CaptionerConfig(image_pixels=20000).cache_key("d")  # None is the resolved budget
    assert llava.cache_key("d") == CaptionerConfig(arch="llava", image_size=128).cache_key("d")
