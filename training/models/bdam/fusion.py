"""Seed 000 §3.4 feature fusion: FFN alignment → softmax modality gate → residual Mamba stack → projection.

The paper fuses the decoupled image identity feature ``f_id^i`` with the text feature after an FFN
"dimensional alignment" to d = 256, weights the modalities with ``g_fus = Softmax(W_f [f_img, f_txt])``
(B × 2, ``W_img + W_txt = 1``), and runs a stack of residual Mamba layers
``f^(l+1) = Mamba(f^(l)) + f^(l)`` (2 layers, d_state 16, d_conv 4) before a final projection.

**The scanned sequence (our explicit choice; the paper leaves it implicit).** A pooled B × d vector is a
sequence of length 1, on which a state-space model degenerates to a gated MLP; the paper's argument for Mamba
(long-range cross-modal dependencies at linear cost) only makes sense over tokens. We therefore scan
``[W_img · FFN(image identity tokens) ; W_txt · FFN(text tokens) ; f_fusion]``: the BDAM identity-branch
patch tokens (gated by the BDAM dimension gate), then the text tokens, then the paper's pooled
``f_fusion = W_img f_img + W_txt f_txt`` as a summary token. Mamba is causal, so the summary position has
read both modalities; its output, after the final projection, is ``f_final`` (B × D_out). Image before
text mirrors the pipeline order (the image is encoded and decoupled first).

**Padding (packing).** §3.4 fuses *one* (image, text) pair; the batch's padding is an artefact of batching
and must not change ``f_final``. A scan, unlike masked attention, has no key-padding mask: a padded
position still discretises a Δ > 0, decays the state by ``exp(ΔA)`` and, through the causal conv and the
pre-norm (``LayerNorm(0) = β ≠ 0``), writes into it, so a caption padded by 1/4/20 positions gave a
different score. We therefore *pack* every row (:func:`pack_text`): the valid text tokens are moved to the
front (stable order), the summary token is placed right after the last valid token, and all padding goes
behind it. Because the conv and the scan are causal, no position at or before the summary reads a padded
position — the state the summary reads is the one an unpadded sequence produces, for the pure-PyTorch scan
and for the ``mamba_ssm`` kernel alike (no change to the scan is needed). The Transformer baseline runs on
the same packed sequence with the padding keys masked (it has no positional encoding, so the reordering
does not change it).

Residual layers are pre-normalised (``x + Mamba(LayerNorm(x))``), as in the reference Mamba block; the
paper's equation omits the norm. Ablations (seed 000 Table 2): ``mixer="mlp"`` (no Mamba: a residual MLP
on the summary token), ``gate=False`` (W_img = W_txt = 0.5), ``align=False`` (a single linear map instead
of the FFN). ``mixer="transformer"``: the 4-layer Transformer fusion baseline of §4.5 on the same sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from training.models.bdam.selective_scan import selective_scan

MixerKind = Literal["mamba", "mlp", "transformer"]


class MambaMixer(nn.Module):
    """One Mamba (S6) mixer (Gu & Dao 2023, ``mamba_simple.Mamba``): in-proj → causal depthwise conv →
    input-dependent (Δ, B, C) → selective scan (:func:`selective_scan`) gated by SiLU(z) → out-proj."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
    ) -> None:
        super().__init__()
        self.d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        nn.init.uniform_(self.dt_proj.weight, -self.dt_rank**-0.5, self.dt_rank**-0.5)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def scan_inputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The selective-scan arguments for ``x`` [B, L, d_model] (exposed for the exactness test)."""
        length = x.shape[1]
        xz = self.in_proj(x).transpose(1, 2)
        u, z = xz.chunk(2, dim=1)
        u = F.silu(self.conv1d(u)[..., :length])
        dt, B, C = torch.split(self.x_proj(u.transpose(1, 2)), [self.dt_rank, self.d_state, self.d_state], -1)
        delta = (self.dt_proj.weight @ dt.transpose(1, 2))
        return {
            "u": u,
            "delta": delta,
            "A": -torch.exp(self.A_log.float()),
            "B": B.transpose(1, 2).contiguous(),
            "C": C.transpose(1, 2).contiguous(),
            "D": self.D.float(),
            "z": z,
            "delta_bias": self.dt_proj.bias.float(),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = selective_scan(**self.scan_inputs(x), delta_softplus=True)
        return self.out_proj(y.transpose(1, 2))


class ResidualMamba(nn.Module):
    """``x + Dropout(Mamba(LayerNorm(x)))``."""

    def __init__(self, d_model: int, d_state: int, d_conv: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.mixer = MambaMixer(d_model, d_state, d_conv)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.mixer(self.norm(x)))


class AlignmentFFN(nn.Module):
    """Dimensional alignment to the fusion width: ``LN(Linear(GELU(Linear(x))))`` or one Linear (ablation)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float, enabled: bool = True) -> None:
        super().__init__()
        if enabled:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(in_dim, 2 * out_dim), nn.GELU(), nn.Dropout(dropout),
                nn.Linear(2 * out_dim, out_dim), nn.LayerNorm(out_dim),
            )
        else:
            self.net = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class FusionOutput:
    """``final`` [B, D_out] (f_final) and the modality weights ``modality_weights`` [B, 2] (W_img, W_txt)."""

    final: torch.Tensor
    modality_weights: torch.Tensor


class FusionModule(nn.Module):
    """Seed 000 §3.4 fusion (see the module docstring for the scanned sequence and the ablations).

    Inputs are already aligned to ``dim`` (:meth:`align_image` / :meth:`align_text` are applied once per
    image / text so that gallery features are cached and re-used by every query pair)."""

    def __init__(
        self,
        image_dim: int,
        text_dim: int,
        dim: int = 256,
        out_dim: int = 256,
        mixer: MixerKind = "mamba",
        layers: int = 2,
        d_state: int = 16,
        d_conv: int = 4,
        gate: bool = True,
        align: bool = True,
        dropout: float = 0.1,
        transformer_layers: int = 4,
        transformer_heads: int = 4,
    ) -> None:
        super().__init__()
        self.mixer_kind = mixer
        self.use_gate = gate
        self.image_align = AlignmentFFN(image_dim, dim, dropout, align)
        self.text_align = AlignmentFFN(text_dim, dim, dropout, align)
        self.gate = nn.Linear(2 * dim, 2)
        if mixer == "mamba":
            self.mixer: nn.Module = nn.ModuleList(
                [ResidualMamba(dim, d_state, d_conv, dropout) for _ in range(layers)]
            )
        elif mixer == "mlp":
            self.mixer = nn.ModuleList(
                [nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout),
                               nn.Linear(2 * dim, dim)) for _ in range(layers)]
            )
        elif mixer == "transformer":
            layer = nn.TransformerEncoderLayer(dim, transformer_heads, 4 * dim, dropout, batch_first=True,
                                               norm_first=True)
            self.mixer = nn.TransformerEncoder(layer, transformer_layers, enable_nested_tensor=False)
        else:
            raise ValueError(f"unknown fusion mixer {mixer!r} (mamba | mlp | transformer)")
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, out_dim)

    def align_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.image_align(x)

    def align_text(self, x: torch.Tensor) -> torch.Tensor:
        return self.text_align(x)

    def modality_weights(self, f_img: torch.Tensor, f_txt: torch.Tensor) -> torch.Tensor:
        """``g_fus = Softmax(W_f [f_img, f_txt])`` [B, 2]; uniform when the gate is ablated."""
        if not self.use_gate:
            return f_img.new_full((f_img.shape[0], 2), 0.5)
        return torch.softmax(self.gate(torch.cat([f_img, f_txt], dim=-1)), dim=-1)

    def forward(
        self,
        f_img: torch.Tensor,
        f_txt: torch.Tensor,
        image_tokens: torch.Tensor,
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
    ) -> FusionOutput:
        """Aligned pooled features [B, d], aligned tokens [B, L_i, d] / [B, L_t, d], text mask [B, L_t]."""
        w = self.modality_weights(f_img, f_txt)
        w_img, w_txt = w[:, 0:1], w[:, 1:2]
        fused = w_img * f_img + w_txt * f_txt  # the paper's f_fusion
        if self.mixer_kind == "mlp":
            x = fused
            for block in self.mixer:
                x = x + block(x)
            return FusionOutput(self.proj(self.norm(x)), w)
        packed, n_valid = pack_text(w_txt[:, :, None] * text_tokens, text_mask, fused)
        n_img = image_tokens.shape[1]
        seq = torch.cat([w_img[:, :, None] * image_tokens, packed], dim=1)
        summary = n_img + n_valid  # [B] index of the summary token in seq
        if self.mixer_kind == "mamba":
            for block in self.mixer:
                seq = block(seq)
        else:
            positions = torch.arange(packed.shape[1], device=seq.device)
            pad = torch.cat([
                torch.zeros(image_tokens.shape[:2], dtype=torch.bool, device=seq.device),
                positions[None, :] > n_valid[:, None],
            ], dim=1)
            seq = self.mixer(seq, src_key_padding_mask=pad)
        out = seq[torch.arange(seq.shape[0], device=seq.device), summary]
        return FusionOutput(self.proj(self.norm(out)), w)


def pack_text(text_tokens: torch.Tensor, text_mask: torch.Tensor,
              summary: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pack each row: valid text tokens first (stable order), the summary token right after them, padding last.

    ``text_tokens`` [B, L, d], ``text_mask`` [B, L] (1 = token), ``summary`` [B, d] → ``[B, L + 1, d]`` (padded
    positions are zero) and the number of valid tokens per row [B] (= the summary's index in the block)."""
    valid = text_mask.bool()
    order = torch.argsort((~valid).to(torch.int32), dim=1, stable=True)
    tokens = text_tokens * valid[:, :, None].to(text_tokens.dtype)
    packed = torch.gather(tokens, 1, order[:, :, None].expand_as(tokens))
    packed = torch.cat([packed, packed.new_zeros(packed.shape[0], 1, packed.shape[2])], dim=1)
    n_valid = valid.sum(dim=1)
    index = n_valid[:, None, None].expand(-1, 1, packed.shape[2])
    return packed.scatter(1, index, summary[:, None, :].to(packed.dtype)), n_valid
