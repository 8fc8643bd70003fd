"""Seed 000 §3.4: the fusion output of one (image, text) pair must not depend on the batch's text padding.

Before packing (``fusion.pack_text``) the Mamba fusion scanned the padded positions: the same caption padded
by 1 / 4 / 20 positions moved ``f_final`` by 6.2 % / 4.8 % / 4.7 % (relative L2, tiny fusion) while the
Transformer fusion, which masks padding keys, moved by 0 %.
"""

import pytest
import torch

import training.methods  # noqa: F401  (registers "bdam")
from training.models.bdam.fusion import FusionModule, pack_text
from training.models.bdam.selective_scan import mamba_kernels_available
from training.registry import METHODS

TOL = 1e-5


def _inputs(device: str = "cpu", b: int = 3, li: int = 10, lt: int = 12, d: int = 32):
    g = torch.Generator().manual_seed(3)
    r = lambda *s: torch.randn(*s, generator=g).to(device)  # noqa: E731
    return r(b, d), r(b, d), r(b, li, d), r(b, lt, d), torch.ones(b, lt, device=device)


def _padded(txt: torch.Tensor, mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Append ``k`` padded positions holding *random* values (their mask is 0)."""
    g = torch.Generator().manual_seed(k)
    junk = (torch.randn(txt.shape[0], k, txt.shape[2], generator=g) * 5).to(txt.device)
    return torch.cat([txt, junk], 1), torch.cat([mask, torch.zeros(mask.shape[0], k, device=mask.device)], 1)


def _fusion(mixer: str, device: str = "cpu") -> FusionModule:
    torch.manual_seed(0)
    return FusionModule(32, 32, dim=32, out_dim=32, mixer=mixer, layers=2).to(device).eval()


@pytest.mark.parametrize("mixer", ["mamba", "transformer", "mlp"])
@pytest.mark.parametrize("pad", [1, 4, 20])
def test_fusion_output_invariant_to_text_padding(mixer: str, pad: int) -> None:
    fm = _fusion(mixer)
    f_img, f_txt, img, txt, mask = _inputs()
    with torch.no_grad():
        base = fm(f_img, f_txt, img, txt, mask).final
        out = fm(f_img, f_txt, img, *_padded(txt, mask, pad)).final
    assert (out - base).abs().max().item() <= TOL


def test_rows_of_different_lengths_match_their_unpadded_selves() -> None:
    """A batch mixing a 3-token and a 12-token caption: each row equals the row fused alone."""
    fm = _fusion("mamba")
    f_img, f_txt, img, txt, mask = _inputs(b=2)
    mask[0, 3:] = 0
    with torch.no_grad():
        both = fm(f_img, f_txt, img, txt, mask).final
        short = fm(f_img[:1], f_txt[:1], img[:1], txt[:1, :3], mask[:1, :3]).final
        long = fm(f_img[1:], f_txt[1:], img[1:], txt[1:], mask[1:]).final
    assert (both[0] - short[0]).abs().max().item() <= TOL
    assert (both[1] - long[0]).abs().max().item() <= TOL


def test_pack_text_moves_padding_behind_the_summary() -> None:
    tok = torch.arange(1, 6, dtype=torch.float32).view(1, 5, 1)
    mask = torch.tensor([[1, 0, 1, 1, 0]])
    packed, n = pack_text(tok, mask, torch.tensor([[9.0]]))
    assert n.tolist() == [3]
    assert packed[0, :, 0].tolist() == [1.0, 3.0, 4.0, 9.0, 0.0, 0.0]


def test_method_score_of_a_caption_does_not_depend_on_its_batch(tiny_model_config, clip_tokenizer,
                                                                 clothes_change_data) -> None:
    """End to end: the stage-2 score of a short caption alone vs. batched with a longer one (padded to it)."""
    torch.manual_seed(0)
    m = METHODS.build("bdam", model=tiny_model_config, num_classes=4, num_captions=0, tokenizer=clip_tokenizer,
                      depth=1, heads=2, fusion_dim=32).eval()
    g = clothes_change_data["gallery"].images[:2]
    short, long = "a slim person", "a broad person with black hair wearing a red shirt and blue pants today"
    alone = m.rerank_scores(clip_tokenizer([short]), g[:1])
    batched = m.rerank_scores(clip_tokenizer([short, long]), g)
    assert abs(alone[0].item() - batched[0].item()) <= TOL


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and mamba_kernels_available()), reason="needs CUDA + mamba_ssm")
@pytest.mark.parametrize("pad", [1, 4, 20])
def test_fusion_kernel_path_invariant_to_text_padding(pad: int) -> None:
    fm = _fusion("mamba", "cuda")
    f_img, f_txt, img, txt, mask = _inputs("cuda")
    with torch.no_grad():
        base = fm(f_img, f_txt, img, txt, mask).final
        out = fm(f_img, f_txt, img, *_padded(txt, mask, pad)).final
    assert (out - base).abs().max().item() <= TOL
