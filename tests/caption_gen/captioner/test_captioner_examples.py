"""Packed joint-stage batches (several examples of one image in one sequence), the vision stage's flip,
and the instruction-phrase tokens of the captioner's tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caption_gen.captioner import CaptionerConfig
from caption_gen.captioner.arch_llava import LlavaArch
from caption_gen.captioner.examples import BatchSampler, Prompt, pack_examples, shared_prefix_length
from caption_gen.captioner.train import _answer_loss, _embeds_with_image

IMAGE = 299
ARCH = LlavaArch(CaptionerConfig(arch="llava"))


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
    packed, _ = _answer_loss(ARCH, model, batch, features)

    total, tokens = torch.zeros(()), 0
    for r, row in enumerate(rows):
        for prompt, answer in row:
            ids = torch.tensor([prompt.input_ids + answer])
            labels = torch.tensor([[-100] * len(prompt.input_ids) + answer])
            loss = model(inputs_embeds=_embeds_with_image(ARCH, model, ids, features[r:r + 1])[0], labels=labels).loss
            total += loss * len(answer)
            tokens += len(answer)
    assert torch.allclose(packed, total / tokens, atol=1e-5), (packed, total / tokens)

    width = batch["input_ids"].shape[1]
    leaky = {**batch, "attention_mask": torch.ones(3, 1, width, width, dtype=torch.bool).tril(),
             "position_ids": torch.arange(width).expand(3, width)}
    assert not torch.allclose(_answer_loss(ARCH, model, leaky, features)[0], packed, atol=1e-3)


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
    sampler.mirror = ARCH.mirror
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


def _length_sampler(seed: int) -> BatchSampler:
    """A sampler whose examples are prompts of 2–40 instruction tokens and answers of 1–30 (drawn from its
    generator, as the real ones are drawn per kind and template)."""
    sampler = BatchSampler.__new__(BatchSampler)
    sampler.records = list(range(50))
    sampler.aux = np.zeros((50, 2), dtype=np.int64)
    sampler.rng = np.random.default_rng(seed)
    sampler.prefix_len, sampler.pad = 7, 0
    prefix = [1, 5, IMAGE, IMAGE, IMAGE, IMAGE, 7]

    def example(_rec):
        rest = sampler.rng.integers(10, 290, size=int(sampler.rng.integers(2, 41))).tolist()
        return Prompt("static", None, prefix + rest), sampler.rng.integers(10, 290, size=int(sampler.rng.integers(1, 31))).tolist() + [2]

    sampler._example = example
    return sampler


def test_length_groups_pad_less_and_keep_every_example():
    grouped = _length_sampler(0).sample_by_length(4, 8)
    assert len(grouped) == 4 and all(len(b["index"]) == 8 for b in grouped)
    # the same draws, packed in the order drawn: same answers and images, more padded positions
    plain = _length_sampler(0)
    idx = plain.rng.integers(50, size=32)
    rows = [[plain._example(i)] for i in idx]
    drawn = [pack_examples(rows[k * 8:(k + 1) * 8], 7, 0) for k in range(4)]
    assert sorted(np.concatenate([b["index"].numpy() for b in grouped]).tolist()) == sorted(idx.tolist())
    answers = lambda bs: sorted(int(t) for b in bs for t in b["labels"][b["labels"] != -100])  # noqa: E731
    assert answers(grouped) == answers(drawn)
    positions = lambda bs: sum(b["input_ids"].numel() for b in bs)  # noqa: E731
    assert positions(grouped) < 0.85 * positions(drawn)
    assert [b["input_ids"].shape for b in _length_sampler(1).sample_by_length(1, 8)] == \
           [_length_sampler(1).sample(8)["input_ids"].shape]  # one step: sample() itself
