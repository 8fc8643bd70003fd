from __future__ import annotations

import torch

from training.models.cross_modal import CrossModalEncoder, MlmHead


def test_cross_modal_mlm_shapes_and_image_dependence() -> None:
    torch.manual_seed(0)
    encoder, head = CrossModalEncoder(32, depth=2), MlmHead(32, vocab_size=50, depth_for_init=2)
    text, image = torch.randn(2, 7, 32), torch.randn(2, 5, 32)
    logits = head(encoder(text, image))
    assert logits.shape == (2, 7, 50)
    other = head(encoder(text, torch.randn(2, 5, 32)))
    assert not torch.allclose(logits, other)  # text tokens attend to the image
