"""The pure-PyTorch selective scan (and the Mamba mixer using it) vs the step-by-step recurrence."""

import pytest
import torch

from training.models.bdam.fusion import MambaMixer
from training.models.bdam.selective_scan import (
    mamba_kernels_available,
    selective_scan,
    selective_scan_ref,
    selective_scan_torch,
)


def _random_inputs(b: int = 2, d: int = 6, n: int = 4, length: int = 77, device: str = "cpu") -> dict:
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=g).to(device)  # noqa: E731
    return {"u": r(b, d, length), "delta": r(b, d, length), "A": -torch.rand(d, n, generator=g).to(device) * 2,
            "B": r(b, n, length), "C": r(b, n, length), "D": r(d), "z": r(b, d, length), "delta_bias": r(d)}


@pytest.mark.parametrize("chunk", [1, 5, 32, 128])
def test_chunked_scan_matches_recurrence(chunk: int) -> None:
    args = _random_inputs()
    ref = selective_scan_ref(**args, delta_softplus=True)
    out = selective_scan_torch(**args, delta_softplus=True, chunk=chunk)
    assert torch.allclose(out, ref, atol=1e-5, rtol=0)


def test_mamba_mixer_torch_path_matches_recurrence() -> None:
    torch.manual_seed(0)
    mixer = MambaMixer(16, d_state=16, d_conv=4)
    x = torch.randn(2, 100, 16)
    args = mixer.scan_inputs(x)
    ref = mixer.out_proj(selective_scan_ref(**args, delta_softplus=True).transpose(1, 2))
    assert torch.allclose(mixer(x), ref, atol=1e-5, rtol=0)
    mixer(x).sum().backward()  # differentiable
    assert mixer.A_log.grad is not None


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and mamba_kernels_available()), reason="needs CUDA + mamba_ssm")
def test_kernel_matches_torch_path() -> None:
    args = _random_inputs(device="cuda")
    kernel = selective_scan(**args, delta_softplus=True, use_kernel=True)
    torch_path = selective_scan_torch(**args, delta_softplus=True)
    assert torch.allclose(kernel, torch_path, atol=1e-4, rtol=1e-3)
