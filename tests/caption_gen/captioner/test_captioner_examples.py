"""Packed joint-stage batches (several examples of one image in one sequence), the vision stage's flip,
and the instruction-phrase tokens of the captioner's tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caption_gen.captioner.examples import BatchSampler, Prompt, pack_examples, shared_prefix_length
from caption_gen.captioner.train import _answer_loss, _embeds_with_image

IMAGE = 299


def _tiny_llava():
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(0)
    return LlavaForConditionalGeneration(LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1,
                                       image_size=32, patch_size=16),
        text_config=LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                num_attention_heads=1, num_key_value_heads=1, head_dim=64),
        image_token_index=IMAGE, vision_feature_select_strategy="default", vision_feature_layer=-1)).eval()


def _rows(rng: np.random.Generator, images: int, per_image: int) -> list[list[tuple[Prompt, list[int]]]]:
    """Prompts ``<s> USER <image>×4 :`` + an instruction of 2–6 tokens; answers of 1–7 tokens + ``</s>``."""
    prefix = [1, 5, IMAGE, IMAGE, IMAGE, IMAGE, 7]
    rows = []
    for _ in range(images):
        row = []
        for _ in range(per_image):
            rest = rng.integers(10, 290, size=int(rng.integers(2, 7))).tolist()
            answer = rng.integers(10, 290, size=int(rng.integers(1, 8))).tolist() + [2]
            row.append((Prompt("static", None, prefix + rest), answer))
        rows.append(row)
    return rows


def test_a_packed_batch_has_the_loss_of_its_examples_as_separate_sequences():
    """Each continuation sees the image prefix and itself only, at the positions it would have alone: the
    packed loss equals the token-weighted mean of the examples' own LLaVA losses; a plain causal mask over
    the packed sequence (continuations reading each other) gives another loss."""
    model = _tiny_llava()
    rows = _rows(np.random.default_rng(0), images=3, per_image=3)
    features = torch.randn(3, 4, 32)
    batch = pack_examples(rows, prefix_len=7, pad=0)
    packed = _answer_loss(model, batch, features)

    total, tokens = torch.zeros(()), 0
    for r, row in enumerate(rows):
        for prompt, answer in row:
            ids = torch.tensor([prompt.input_ids + answer])
            labels = torch.tensor([[-100] * len(prompt.input_ids) + answer])
            loss = model(inputs_embeds=_embeds_with_image(model, ids, features[r:r + 1]), labels=labels).loss
            total += loss * len(answer)
            tokens += len(answer)
    assert torch.allclose(packed, total / tokens, atol=1e-5), (packed, total / tokens)

    width = batch["input_ids"].shape[1]
    leaky = {**batch, "attention_mask": torch.ones(3, 1, width, width, dtype=torch.bool).tril(),
             "position_ids": torch.arange(width).expand(3, width)}
    assert not torch.allclose(_answer_loss(model, leaky, features), packed, atol=1e-3)


def test_packing_computes_each_image_once():
    rows = _rows(np.random.default_rng(1), images=2, per_image=4)
    one_per_row = pack_examples([[ex] for row in rows for ex in row], prefix_len=7, pad=0)
    packed = pack_examples(rows, prefix_len=7, pad=0)
    assert int((packed["input_ids"] == IMAGE).sum()) == 2 * 4
    assert int((one_per_row["input_ids"] == IMAGE).sum()) == 8 * 4
    assert packed["input_ids"].numel() < one_per_row["input_ids"].numel()
    assert int((packed["labels"] != -100).sum()) == int((one_per_row["labels"] != -100).sum())


def test_the_shared_prefix_must_hold_every_image_token():
    a = Prompt("static", None, [1, 5, IMAGE, IMAGE, 7, 20, 21])
    b = Prompt("identity", None, [1, 5, IMAGE, IMAGE, 7, 30])
    assert shared_prefix_length([a, b], IMAGE) == 5
    with pytest.raises(ValueError, match="common prefix"):
        shared_prefix_length([a, Prompt("clothing", None, [1, 5, 8, IMAGE, IMAGE])], IMAGE)


def test_vision_stage_flip_mirrors_the_drawn_images():
    sampler = BatchSampler.__new__(BatchSampler)
    sampler.pixels = torch.randn(5, 3, 8, 8).half()
    sampler.aux = np.arange(5 * 2).reshape(5, 2)
    sampler.image_rng = np.random.default_rng(3)
    plain, labels = sampler.sample_images(6)
    sampler.image_rng = np.random.default_rng(3)
    mirrored, labels_m = sampler.sample_images(6, hflip=1.0)
    assert torch.equal(labels, labels_m)
    assert torch.equal(mirrored, plain.flip(-1)) and not torch.equal(mirrored, plain)


def test_instruction_phrases_are_single_tokens_and_round_trip():
    from caption_gen.captioner.vocabulary import instruction_phrases, tokenizer_corpus, train_tokenizer
    from caption_gen.instructions.bank import InstructionSet

    instructions = InstructionSet.load()
    phrases = instruction_phrases(instructions)
    static = instructions.render("static", image_id="-", seed=0).text
    dynamic = instructions.render("dynamic", image_id="-", seed=0).text
    assert phrases and all(len(p.split()) >= 3 for p in phrases)
    corpus = tokenizer_corpus([static, dynamic], seed=0, samples=20)
    plain, phrased = train_tokenizer(corpus, 400), train_tokenizer(corpus, 400, phrases)
    for text in (static, dynamic):
        ids = phrased(text)["input_ids"]
        assert phrased.decode(ids) == text
        assert len(ids) < len(plain(text)["input_ids"])
    assert len(phrased(static)["input_ids"]) <= 4  # three sentences, one token each
    answer = " A man with short black hair wears a red t-shirt."
    assert phrased(answer)["input_ids"] == plain(answer)["input_ids"]  # answers keep their word tokens
