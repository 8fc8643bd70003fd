"""Mamba's selective scan (S6, Gu & Dao 2023, Alg. 2) — an exact PyTorch path plus a recurrent reference.

``selective_scan`` is what the fusion module (seed 000 §3.4) calls. It dispatches to the CUDA kernel of
``mamba_ssm`` (``selective_scan_fn``) when that package is importable and the inputs are on a GPU;
otherwise it runs an exact pure-PyTorch *chunked parallel scan*:

* the linear recurrence ``h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t u_t`` is split into chunks of ``chunk``
  steps; inside every chunk (all chunks at once) a Hillis–Steele prefix scan over the pairs
  ``(a, b) ∘ (a', b') = (a a', a' b + b')`` takes ``log2(chunk)`` vectorised steps;
* the chunk boundary states are carried sequentially (``L / chunk`` cheap steps), then broadcast back.

Work is ``O(L · log2(chunk))`` — linear in the sequence length for a fixed chunk — and the result equals
the recurrence up to floating-point re-association (tested against :func:`selective_scan_ref` to 1e-5).
Argument layout follows ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``.

Padding: the scan has no mask — every position, padded or not, updates the state. Callers that batch
variable-length sequences must keep padding out of the positions they read; the fusion (seed 000 §3.4,
``fusion.pack_text``) packs every row so that padding only follows the position it reads (the scan and the
conv are causal), which makes both this path and the CUDA kernel padding-invariant.
"""

from __future__ import annotations

import importlib.util

import torch
import torch.nn.functional as F

DEFAULT_CHUNK = 32


def mamba_kernels_available() -> bool:
    """True when ``mamba_ssm``'s CUDA selective-scan kernel can be imported."""
    return importlib.util.find_spec("mamba_ssm") is not None


def _discretize(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    delta_bias: torch.Tensor | None,
    delta_softplus: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-order-hold A and Euler B: returns ``exp(ΔA)`` and ``Δ B u``, both [b, d, l, n] (float32)."""
    delta = delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    dA = torch.exp(delta.unsqueeze(-1) * A.float()[None, :, None, :])
    dBu = delta.unsqueeze(-1) * B.float().transpose(1, 2)[:, None, :, :] * u.float().unsqueeze(-1)
    return dA, dBu


def _finish(
    y: torch.Tensor, u: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor:
    if D is not None:
        y = y + u.float() * D.float()[None, :, None]
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype)


def selective_scan_ref(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
) -> torch.Tensor:
    """Step-by-step recurrent selective scan (a Python loop over the sequence): the reference.

    Shapes: ``u, delta, z`` [b, d, l]; ``A`` [d, n]; ``B, C`` [b, n, l]; ``D, delta_bias`` [d] → [b, d, l].
    """
    dA, dBu = _discretize(u, delta, A, B, delta_bias, delta_softplus)
    b, d, length, n = dA.shape
    state = dA.new_zeros(b, d, n)
    outputs = []
    for t in range(length):
        state = dA[:, :, t] * state + dBu[:, :, t]
        outputs.append((state * C.float()[:, None, :, t]).sum(-1))
    y = torch.stack(outputs, dim=-1)
    return _finish(y, u, D, z, u.dtype)


def _chunked_linear_scan(a: torch.Tensor, b: torch.Tensor, chunk: int) -> torch.Tensor:
    """All states of ``h_t = a_t h_{t-1} + b_t`` (h_{-1} = 0) along dim 2 of [b, d, l, n] tensors."""
    bs, d, length, n = a.shape
    chunk = max(1, min(chunk, length))
    pad = (-length) % chunk
    if pad:
        a = torch.cat([a, a.new_ones(bs, d, pad, n)], dim=2)
        b = torch.cat([b, b.new_zeros(bs, d, pad, n)], dim=2)
    nc = a.shape[2] // chunk
    a = a.reshape(bs, d, nc, chunk, n)
    b = b.reshape(bs, d, nc, chunk, n)
    offset = 1
    while offset < chunk:  # Hillis–Steele inclusive scan inside every chunk (out of place: autograd-safe)
        b = torch.cat([b[:, :, :, :offset], a[:, :, :, offset:] * b[:, :, :, :-offset] + b[:, :, :, offset:]], 3)
        a = torch.cat([a[:, :, :, :offset], a[:, :, :, offset:] * a[:, :, :, :-offset]], 3)
        offset *= 2
    carry = a.new_zeros(bs, d, n)
    carries = []
    for c in range(nc):  # state entering chunk c
        carries.append(carry)
        carry = a[:, :, c, -1] * carry + b[:, :, c, -1]
    carry_in = torch.stack(carries, dim=2).unsqueeze(3)  # [b, d, nc, 1, n]
    states = (b + a * carry_in).reshape(bs, d, nc * chunk, n)
    return states[:, :, :length]


def selective_scan_torch(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    chunk: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Exact pure-PyTorch selective scan (chunked parallel scan; see module docstring)."""
    dA, dBu = _discretize(u, delta, A, B, delta_bias, delta_softplus)
    states = _chunked_linear_scan(dA, dBu, chunk)
    y = torch.einsum("bdln,bnl->bdl", states, C.float())
    return _finish(y, u, D, z, u.dtype)


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    use_kernel: bool = True,
) -> torch.Tensor:
    """The selective scan: ``mamba_ssm`` CUDA kernel when importable and on GPU, else the exact torch path."""
    if use_kernel and u.is_cuda and mamba_kernels_available():
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

        return selective_scan_fn(
            u, delta, A, B, C, D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus
        )
    return selective_scan_torch(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
