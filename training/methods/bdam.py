"""BDAM (seed 000 §3, §4.2) as a registered training method, plus our two-stage retrieval.

Per image the batch holds the query caption (``text_tokens``; raw ``captions`` strings when present) and,
for the BDAM supervision, an identity description and a clothing description (the corpus kinds ``identity``
and ``clothing``) as raw strings under ``identity_caption`` / ``clothing_caption`` (lists from the collate).
``missing_descriptions``: ``"error"`` (default) or ``"skip"`` — drop the terms that need them (``L_aln`` and
the identity-description half of ``itc``) when a batch has none, e.g. benchmarks without MLLM descriptions.

Text tokenization: with ``text_encoder`` a local BERT directory, BERT's own WordPiece tokenizer (same
directory) encodes raw strings; raw captions come from ``captions`` or, if absent, are decoded back from
the engine's CLIP tokens (lower-cased text, which ``bert-base-uncased`` lower-cases anyway). With
``text_encoder: null`` (tiny random BERT for tests/smoke) the CLIP BPE ids are used directly as BERT ids.

Global text feature (``text_pooling``): ``cls`` — the final [CLS] state, as §4.2's BERT — or ``mean``, the
masked mean of the token states (ours). A BERT with random weights starts with a [CLS] state that does not
depend on the text: its attention averages value vectors far smaller than [CLS]'s own embedding, so at
initialisation every caption gets the same feature (cosine ≥ 0.9999 between any two, measured on the
clothes-change world's captions), every contrastive term sits at its uniform value, and the image features
collapse onto the constant text feature (measured: 160 steps of ``configs/bdam_cpu.yaml`` leave stage-1
retrieval at exactly k/N Rank-k, i.e. one ranking for every query). ``mean`` carries the words from the first
step; random-weight towers trained from scratch use it (``configs/bdam_cpu.yaml``), pretrained BERT keeps
``cls``.

Encoders (``towers``): ``hf`` — seed 000's transformers ViT + BERT (local directories, or random towers sized
by a project model config); ``clip`` (ours) — the image and text towers of one open_clip CLIP of ``model.arch``,
random or loaded from ``model.checkpoint`` (a CLIP state dict, e.g. the LUPerson-MLLM-pretrained weights of
seed 002), at any ``model.image_size``/``stride``. Their projected patch / token states feed BDAM as the ViT /
BERT states do; the CLIP is registered once on the method (``clip.*``) and the two encoders are views of it.
``text_pooling: eos`` is CLIP's end-of-text state (the causal tower's summary; ``cls`` would read the start
token, the same for every caption, and is an error with ``clip``; ``eos`` is an error with BERT). Measured in
the miniature clothes-change world (``benchmarks/RESULTS.md``, "BDAM"): from random weights the CLIP towers
collapse under the batch-hard triplet as the BERT/ViT ones do, and ``itc`` alone learns slowly on both.

Tasks balanced by GradNorm (:mod:`training.gradnorm`, α read as the exponent of the target — see there;
``gradnorm_alpha_mode: coefficient`` is the literal Eq. 6): ``info`` (Eq. 3, fused vs text), ``triplet``
(Eq. 4, on f_id), ``aln`` (Eq. 1), ``decouple`` (Eq. 2) and ``itc`` — our addition: symmetric InfoNCE
between the aligned identity image feature and the caption (+ identity description) features. ``itc``
trains the space of stage 1, which the paper does not define.

Supervision as §3.2–3.4 write it:

* ``L_aln`` (Eq. 1) compares the *pooled* clothing feature ``f̂_clo`` (before the dimension gate; "s_ij =
  f̂_clo^i · (f_clo^t)^j"), linearly projected to the text width, with the clothing descriptions; the HSIC of
  Eq. 2 uses the gated ``f_id^i``/``f_clo^i``. ``aln_feature: gated`` is the former behaviour (gated f_clo).
* The fusion's text is the identity description ``f_id^t`` (§3.4 "processes the decoupled visual features
  f_id^i and the textual features f_id^t"; Fig. 2 "the fusion module integrates f_id and f_id^t"), so Eq. 3
  during training scores ``f_final(f_id^t_i, image_j)`` against ``f_id^t_i``. Reading (declared): at test time
  a query has no identity description, so stage 2 fuses the query caption — the only text there is.
  ``fusion_text: caption`` fuses the query caption in training too (our former choice). A batch without
  identity descriptions (``missing_descriptions: skip``) falls back to the caption for that batch.
* Hair (§1: "content irrelevant to identity (e.g., clothing, hairstyle)"): hairstyle — cut, length,
  ponytail, bun, braids — is appearance, not identity; it belongs to the clothing/appearance description,
  never the identity description. Hair *colour* we keep as an identity trait (declared: it persists across
  clothes changes like skin tone; the paper does not discuss dyeing). This method does not rewrite texts:
  it uses the corpus' ``identity``/``clothing`` rows as they are, so the split is decided by the captioning
  prompts and the synthetic attributes; the BDAM tests' synthetic world keys identities by (hair colour,
  build) and outfits by garments, consistent with this reading.
* Gate regularization: §4.2 and Table 3 ("w/o Gate Reg.", −0.7 R1) name it but the paper never defines it.
  Our form (:func:`training.losses.bdam_losses.gate_regularization`) pulls both gates towards ½, which
  conflicts with Fig. 4 (learned identity gates skewed right, mean 0.61 ± 0.17): it is therefore **off by
  default** (``gate_reg_weight: 0``) and opt-in for ablations; with a weight > 0 it has a fixed weight (not
  a GradNorm task, as in the paper's task list of Eq. 6).
* Triplet positives: Eq. 4 needs a positive of the anchor's identity in the batch; with a random sampler
  over a corpus where every image is its own identity there is none and the loss is identically 0. The
  method counts, per epoch, the pairs of same-identity samples the triplet loss saw and logs a **warning**
  at the end of an epoch in which it saw none (the contrastive terms always have their diagonal positive
  pair); ``configs/bdam.yaml`` trains with a PK sampler over the corpus' person ids.

``identity_positives`` (default true): PK batches hold several images of one person, so ``itc`` treats every
pair of the same identity as positive (§3.5: positives are pairs "representing the same identity"), and
``L_aln`` treats images whose clothing descriptions are the same string as positives (Eq. 1 says "same
sample"; two columns with an identical text feature cannot be told apart, so we read it as same description).
With ``false`` only the diagonal is positive, the literal Eq. 1 / Eq. 3.

Eq. 3 for a cross-encoder: the fused representation depends on the (text, image) pair, so for each text
``t_i`` the candidates are its own image and the ``hard_negatives`` hardest images of other identities (by
stage-1 cosine); ``v_ij = f_final(t_i, image_j)`` and the logits are ``cos(v_ij, t_i) / τ``. The same
``cos(f_final(q, g), t_q)`` is the stage-2 match score.

Retrieval (ours; the paper is silent): stage 1 ranks the gallery by cosine between ``encode_image`` (the
aligned identity image feature) and ``encode_text``; stage 2 re-scores the top-K (``rerank_top_k``, 32) with
the fusion match score through the evaluator's ``rerank_scores`` hook.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pedes_core.configuration import ConfigModel
from pedes_core.errors import ConfigError, InputError
from training.gradnorm import GradNorm
from training.losses.bdam_losses import candidate_info_nce, gate_regularization, hsic, info_nce, triplet_loss
from training.methods.base import TrainingMethod
from training.models.bdam.bdam import BDAM
from training.models.bdam.encoders import ClipImageEncoder, ClipTextEncoder, ImageEncoder, TextEncoder
from training.models.bdam.fusion import FusionModule, MixerKind
from training.models.clip_backbone import PROJECT_ARCHS, ClipBackbone, tower_config
from training.models.config import ModelConfig
from training.registry import METHODS

log = logging.getLogger(__name__)

TASKS: tuple[str, ...] = ("info", "itc", "triplet", "aln", "decouple")
GATE_PNG = "bdam_gates.png"


TextPooling = Literal["cls", "mean", "eos"]
Towers = Literal["hf", "clip"]


@dataclass
class TextStates:
    states: torch.Tensor  # [B, L, D]
    mask: torch.Tensor  # [B, L] 1 = token
    pooling: TextPooling = "cls"
    ids: torch.Tensor | None = None  # [B, L] token ids (``eos`` pooling reads the end-of-text position)

    @property
    def pooled(self) -> torch.Tensor:
        """The global text feature [B, D]: the [CLS] state, the masked token mean or the end-of-text state
        (``text_pooling``; ``eos``: CLIP's largest-id position, :meth:`ClipBackbone.pool_text`)."""
        if self.pooling == "cls":
            return self.states[:, 0]
        if self.pooling == "eos":
            assert self.ids is not None, "eos pooling needs the token ids"
            return ClipBackbone.pool_text(self.states, self.ids)
        m = self.mask.to(self.states.dtype)[..., None]
        return (self.states * m).sum(1) / m.sum(1).clamp_min(1.0)


@dataclass
class ImageStates:
    f_id: torch.Tensor  # [B, D_v] gated identity feature (pooled patch tokens without BDAM)
    tokens_id: torch.Tensor  # [B, L, D_v]
    f_clo: torch.Tensor | None
    gate: torch.Tensor | None
    f_clo_hat: torch.Tensor | None = None  # [B, D_v] pooled clothing feature before the gate (Eq. 1)


class BdamParams(ConfigModel):
    """``method.params`` of ``bdam`` (the constructor's keyword arguments, typed; unknown keys are errors).
    Sizes: ``depth``/``heads`` of the BDAM blocks, ``fusion_dim``/``fusion_layers``/``d_state``/``d_conv`` of the
    fusion mixer; the loss options are documented in the module docstring."""

    image_encoder: str | None = None
    text_encoder: str | None = None
    text_max_length: int = 77
    text_pooling: TextPooling = "cls"
    towers: Towers = "hf"
    use_bdam: bool = True
    depth: int = 6
    heads: int = 8
    cross_attention: bool = True
    gate: bool = True
    fusion: MixerKind = "mamba"
    fusion_dim: int = 256
    fusion_layers: int = 2
    d_state: int = 16
    d_conv: int = 4
    fusion_gate: bool = True
    fusion_align: bool = True
    dropout: float = 0.1
    temperature: float = 0.07
    aln_temperature: float = 0.07
    triplet_margin: float = 0.3
    hard_negatives: int = 7
    gate_reg_weight: float = 0.0
    identity_text_alignment: bool = True
    disabled_losses: list[str] | None = None
    missing_descriptions: Literal["error", "skip"] = "error"
    gradnorm: bool = True
    gradnorm_alpha: float = 1.5
    gradnorm_lr: float = 0.025
    gradnorm_log_reg: float = 1e-3
    gradnorm_clip: tuple[float, float] = (1e-4, 10.0)
    gradnorm_alpha_mode: Literal["exponent", "coefficient"] = "exponent"
    gradnorm_reference: Literal["first", "mean"] = "first"
    rerank_top_k: int = 32
    identity_positives: bool = True
    aln_feature: Literal["pooled", "gated"] = "pooled"
    fusion_text: Literal["identity", "caption"] = "identity"


@METHODS.register("bdam")
class BDAMMethod(TrainingMethod):
    """Seed 000: ViT + BERT, BDAM decoupling, Mamba fusion, GradNorm-balanced multi-task loss."""

    supports_rerank = True
    method_name = "bdam"
    params_model = BdamParams
    #: ``pedes train --smoke`` sizes of the params BDAM keeps in ``method.params`` (wiring, not scale)
    smoke_params: ClassVar[dict[str, Any]] = {"depth": 1, "heads": 2, "fusion_dim": 32, "hard_negatives": 1,
                                              "rerank_top_k": 4}

    def __init__(
        self,
        *,
        model: ModelConfig,
        num_classes: int,
        num_captions: int,
        tokenizer: Any,
        image_encoder: str | None = None,
        text_encoder: str | None = None,
        text_max_length: int = 77,
        text_pooling: TextPooling = "cls",
        towers: Towers = "hf",
        use_bdam: bool = True,
        depth: int = 6,
        heads: int = 8,
        cross_attention: bool = True,
        gate: bool = True,
        fusion: MixerKind = "mamba",
        fusion_dim: int = 256,
        fusion_layers: int = 2,
        d_state: int = 16,
        d_conv: int = 4,
        fusion_gate: bool = True,
        fusion_align: bool = True,
        dropout: float = 0.1,
        temperature: float = 0.07,
        aln_temperature: float = 0.07,
        triplet_margin: float = 0.3,
        hard_negatives: int = 7,
        gate_reg_weight: float = 0.0,
        identity_text_alignment: bool = True,
        disabled_losses: list[str] | None = None,
        missing_descriptions: Literal["error", "skip"] = "error",
        gradnorm: bool = True,
        gradnorm_alpha: float = 1.5,
        gradnorm_lr: float = 0.025,
        gradnorm_log_reg: float = 1e-3,
        gradnorm_clip: tuple[float, float] = (1e-4, 10.0),
        gradnorm_alpha_mode: Literal["exponent", "coefficient"] = "exponent",
        gradnorm_reference: Literal["first", "mean"] = "first",
        rerank_top_k: int = 32,
        identity_positives: bool = True,
        aln_feature: Literal["pooled", "gated"] = "pooled",
        fusion_text: Literal["identity", "caption"] = "identity",
    ) -> None:
        super().__init__()
        del num_classes, num_captions  # BDAM has no ID classifier / noise store
        self.clip_tokenizer = tokenizer
        self.tokenizer = tokenizer  # captions become CLIP ids in the collate; BERT ids are derived in encode_text
        if towers not in ("hf", "clip"):
            raise ConfigError(f"method.params.towers: {towers!r} (hf | clip)")
        if text_pooling not in ("cls", "mean", "eos"):
            raise ConfigError(f"method.params.text_pooling: {text_pooling!r} (cls | mean | eos)")
        self.bert_tokenizer = None
        self.clip: ClipBackbone | None = None
        if towers == "clip":
            if image_encoder is not None or text_encoder is not None:
                raise ConfigError("method.params.image_encoder/text_encoder: local ViT/BERT directories are for "
                                  "towers: hf; towers: clip builds both towers from model.arch (weights: "
                                  "model.checkpoint)")
            if text_pooling == "cls":
                raise ConfigError("method.params.text_pooling: cls reads position 0, the start token of CLIP's "
                                  "causal text tower (the same state for every caption); use eos or mean")
            self.clip = ClipBackbone(model, tokenizer.vocab_size)
            self.image_encoder: nn.Module = ClipImageEncoder(self.clip)
            self.text_encoder: nn.Module = ClipTextEncoder(self.clip)
        else:
            if text_pooling == "eos":
                raise ConfigError("method.params.text_pooling: eos is CLIP's end-of-text feature; BERT (towers: "
                                  "hf) pools cls or mean")
            self._build_hf_towers(model, tokenizer, image_encoder, text_encoder, dropout)
        self.text_max_length = text_max_length
        self.text_pooling: TextPooling = text_pooling
        dv, dt = self.image_encoder.dim, self.text_encoder.dim
        self.use_bdam = use_bdam
        self.bdam = BDAM(dv, depth, heads, dropout, cross_attention, gate) if use_bdam else None
        self.fusion = FusionModule(dv, dt, fusion_dim, fusion_dim, fusion, fusion_layers, d_state, d_conv,
                                   fusion_gate, fusion_align, dropout)
        self.clothing_proj = nn.Linear(dv, dt) if use_bdam else None  # "projected to the text dimension"
        disabled = set(disabled_losses or [])
        unknown = disabled - set(TASKS) - {"gate_reg"}
        if unknown:
            raise ConfigError(f"method.params.disabled_losses: unknown {sorted(unknown)} (known: {[*TASKS, 'gate_reg']})")
        if not use_bdam:
            disabled |= {"aln", "decouple", "gate_reg"}
        self.tasks = [t for t in TASKS if t not in disabled]
        if gate_reg_weight < 0:
            raise ConfigError(f"method.params.gate_reg_weight: must be >= 0, got {gate_reg_weight}")
        if aln_feature not in ("pooled", "gated"):
            raise ConfigError(f"method.params.aln_feature: {aln_feature!r} (pooled | gated)")
        if fusion_text not in ("identity", "caption"):
            raise ConfigError(f"method.params.fusion_text: {fusion_text!r} (identity | caption)")
        self.use_gate_reg = "gate_reg" not in disabled and gate_reg_weight > 0
        self.aln_feature, self.fusion_text = aln_feature, fusion_text
        self.temperature, self.aln_temperature = temperature, aln_temperature
        self.triplet_margin, self.hard_negatives = triplet_margin, hard_negatives
        self.gate_reg_weight = gate_reg_weight
        self.identity_text_alignment = identity_text_alignment and use_bdam
        self.missing_descriptions = missing_descriptions
        self.rerank_top_k = rerank_top_k
        self.identity_positives = identity_positives
        self.gradnorm = (GradNorm(self.tasks, gradnorm_alpha, gradnorm_lr, gradnorm_log_reg, gradnorm_clip,
                                  alpha_mode=gradnorm_alpha_mode, reference=gradnorm_reference)
                         if gradnorm and self.tasks else None)
        self._positive_pairs: dict[str, int] = {}  # per epoch: same-identity pairs each loss saw
        self._train_steps = 0
        self._run_dir: Path | None = None
        self._gate_log: list[np.ndarray] = []
        self._modality_log: list[np.ndarray] = []

    def _build_hf_towers(self, model: ModelConfig, tokenizer: Any, image_encoder: str | None,
                         text_encoder: str | None, dropout: float) -> None:
        """Seed 000's transformers ViT + BERT: local weight directories, or random towers sized by one of the
        project's model configs (tests, CPU runs)."""
        tiny = model.arch in PROJECT_ARCHS
        sizes = tower_config(model) if tiny else None
        if sizes is not None and image_encoder is None:
            v = sizes["vision_cfg"]
            self.image_encoder = ImageEncoder.tiny(tuple(model.image_size), v["patch_size"], v["width"], v["layers"],
                                                   v["width"] // v["head_width"], dropout)
        elif image_encoder is not None:
            self.image_encoder = ImageEncoder.from_local(image_encoder)
        else:
            raise ConfigError("method.params.image_encoder: a local ViT directory is required unless model.arch is "
                              f"one of the project's model configs {sorted(PROJECT_ARCHS)}")
        if text_encoder is not None:
            from transformers import BertTokenizerFast

            self.text_encoder = TextEncoder.from_local(text_encoder)
            self.bert_tokenizer = BertTokenizerFast.from_pretrained(text_encoder)
        elif sizes is not None:
            t = sizes["text_cfg"]
            self.text_encoder = TextEncoder.tiny(tokenizer.vocab_size, tokenizer.context_length, t["width"], t["layers"],
                                                 t["heads"], dropout)
        else:
            raise ConfigError("method.params.text_encoder: a local BERT directory is required unless model.arch is "
                              f"one of the project's model configs {sorted(PROJECT_ARCHS)}")

    # --- text ------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.bert_tokenizer is not None:
            enc = self.bert_tokenizer(list(texts), padding=True, truncation=True, max_length=self.text_max_length,
                                      return_tensors="pt")
            return enc["input_ids"], enc["attention_mask"]
        ids = self.clip_tokenizer(list(texts))
        return ids, (ids != 0).long()

    def encode_text_states(self, text: torch.Tensor | list[str]) -> TextStates:
        """Token states of captions given as raw strings or as the engine's CLIP token ids."""
        if isinstance(text, torch.Tensor):
            if self.bert_tokenizer is not None:
                text = [self.clip_tokenizer.decode(row) for row in text.cpu()]
                ids, mask = self._tokenize(text)
            else:
                ids, mask = text, (text != 0).long()
        else:
            ids, mask = self._tokenize(text)
        ids, mask = ids.to(self._device()), mask.to(self._device())
        ids = ids[:, : int(mask.sum(1).max())]  # drop all-padding columns
        mask = mask[:, : ids.shape[1]]
        return TextStates(self.text_encoder(ids, mask), mask, self.text_pooling, ids)

    # --- image -----------------------------------------------------------------------------
    def encode_image_states(self, images: torch.Tensor) -> ImageStates:
        tokens = self.image_encoder(images)
        if self.bdam is None:
            return ImageStates(tokens.mean(dim=1), tokens, None, None)
        out = self.bdam(tokens)
        return ImageStates(out.f_id, out.tokens_id, out.f_clo, out.gate, out.h_clo)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Stage-1 gallery feature: the aligned identity image feature FFN(f_id) [B, 256]."""
        st = self.encode_image_states(images)
        if st.gate is not None and not self.training:
            self._gate_log.append(st.gate.detach().float().mean(dim=1).cpu().numpy())
        return self.fusion.align_image(st.f_id)

    def encode_text(self, text_tokens: torch.Tensor) -> torch.Tensor:
        """Stage-1 query feature: the aligned caption feature FFN([CLS] or token mean) [B, 256]."""
        return self.fusion.align_text(self.encode_text_states(text_tokens).pooled)

    # --- fusion ----------------------------------------------------------------------------
    def pair_scores(self, img: ImageStates, txt: TextStates, text_index: torch.Tensor,
                    image_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage-2 match score ``cos(f_final(t, g), f_txt(t))`` for the pairs (text_index[p], image_index[p])."""
        f_img = self.fusion.align_image(img.f_id)[image_index]
        tok_img = self.fusion.align_image(img.tokens_id)[image_index]
        f_txt = self.fusion.align_text(txt.pooled)[text_index]
        tok_txt = self.fusion.align_text(txt.states)[text_index]
        out = self.fusion(f_img, f_txt, tok_img, tok_txt, txt.mask[text_index])
        return F.cosine_similarity(out.final.float(), f_txt.float(), dim=-1), out.modality_weights

    @torch.no_grad()
    def rerank_scores(self, query_tokens: torch.Tensor, gallery_images: torch.Tensor) -> torch.Tensor:
        """Evaluator hook: one fusion match score per (query_tokens[p], gallery_images[p]) pair → [P]."""
        img = self.encode_image_states(gallery_images)
        txt = self.encode_text_states(query_tokens)
        idx = torch.arange(len(gallery_images), device=gallery_images.device)
        scores, w = self.pair_scores(img, txt, idx, idx)
        self._modality_log.append(w.detach().float().cpu().numpy())
        return scores

    # --- training --------------------------------------------------------------------------
    def _descriptions(self, batch: dict[str, Any], key: str) -> list[str] | None:
        for name in (key, key + "s"):
            values = batch.get(name)
            if values is not None and all(isinstance(v, str) and v for v in values):
                return list(values)
        if self.missing_descriptions == "error":
            raise InputError(f"BDAM batch has no {key!r} strings (corpus kind {key.split('_')[0]!r}); "
                             "set method.params.missing_descriptions: skip to train without them")
        return None

    def _fusion_info(self, img: ImageStates, txt: TextStates, f_img: torch.Tensor, f_txt: torch.Tensor,
                     pids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = len(pids)
        with torch.no_grad():
            sim = F.normalize(f_txt.float(), dim=-1) @ F.normalize(f_img.float(), dim=-1).T  # [text, image]
            sim = sim.masked_fill(pids[:, None] == pids[None, :], float("-inf"))
            k = min(self.hard_negatives, b - 1)
            neg_val, neg_idx = sim.topk(k, dim=1) if k > 0 else (sim[:, :0], sim[:, :0].long())
        own = torch.arange(b, device=pids.device)
        cand = torch.cat([own[:, None], neg_idx], dim=1)  # [B, 1+k]
        valid = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=pids.device), torch.isfinite(neg_val)], 1)
        scores, w = self.pair_scores(img, txt, own[:, None].expand_as(cand).reshape(-1), cand.reshape(-1))
        scores = scores.view(b, -1).masked_fill(~valid, float("-inf"))
        return candidate_info_nce(scores, self.temperature), w.view(b, -1, 2)[:, 0]

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        pids = batch["person_ids"].to(self._device())
        img = self.encode_image_states(batch["images"].to(self._device()))
        caps = batch.get("captions")
        txt = self.encode_text_states(caps if caps is not None else batch["text_tokens"])
        f_img, f_txt = self.fusion.align_image(img.f_id), self.fusion.align_text(txt.pooled)
        losses: dict[str, torch.Tensor] = {}
        logs: dict[str, torch.Tensor] = {}
        need_id_desc = ("itc" in self.tasks and self.identity_text_alignment) or (
            "info" in self.tasks and self.fusion_text == "identity")
        id_desc = self._descriptions(batch, "identity_caption") if need_id_desc else None
        id_states = self.encode_text_states(id_desc) if id_desc is not None else None
        if "info" in self.tasks:
            if self.fusion_text == "identity" and id_states is not None:  # §3.4: fuse f_id^i with f_id^t
                fuse_txt, fuse_f = id_states, self.fusion.align_text(id_states.pooled)
            else:
                fuse_txt, fuse_f = txt, f_txt
            losses["info"], modality = self._fusion_info(img, fuse_txt, f_img, fuse_f, pids)
        else:
            modality = None
        if self.training:
            self._train_steps += 1
        if "itc" in self.tasks:
            lab = pids if self.identity_positives else None
            itc = (info_nce(f_img, f_txt, self.temperature, lab) + info_nce(f_txt, f_img, self.temperature, lab)) / 2
            if id_states is not None and self.identity_text_alignment:
                f_idt = self.fusion.align_text(id_states.pooled)
                itc = itc + (info_nce(f_img, f_idt, self.temperature, lab)
                             + info_nce(f_idt, f_img, self.temperature, lab)) / 2
            losses["itc"] = itc
        if "triplet" in self.tasks:
            losses["triplet"] = triplet_loss(img.f_id, pids, self.triplet_margin)
            if self.training:  # same-identity pairs (i ≠ j) this batch offers Eq. 4
                same = int((pids[:, None] == pids[None, :]).sum().item()) - len(pids)
                self._count_positives("triplet", same)
        if "aln" in self.tasks:
            clo_desc = self._descriptions(batch, "clothing_caption")
            # Eq. 1: s_ij = f̂_clo^i · (f_clo^t)^j on the pooled (pre-gate) clothing feature
            clo_img = img.f_clo_hat if self.aln_feature == "pooled" else img.f_clo
            if clo_desc is not None:
                f_clo_t = self.encode_text_states(clo_desc).pooled
                outfit = _string_labels(clo_desc).to(pids.device) if self.identity_positives else None
                losses["aln"] = info_nce(self.clothing_proj(clo_img), f_clo_t, self.aln_temperature, outfit)
            else:
                losses["aln"] = clo_img.sum() * 0.0
        if "decouple" in self.tasks:
            losses["decouple"] = hsic(img.f_id, img.f_clo)
        elif img.f_clo is not None:
            logs["hsic"] = hsic(img.f_id.detach(), img.f_clo.detach())
        weights = torch.ones(len(self.tasks), device=pids.device)
        if self.gradnorm is not None and self.training and torch.is_grad_enabled():
            gn = self.gradnorm.step(losses, self.image_encoder.last_shared_layer())
            weights = gn["weights"]
            logs["gradnorm"] = gn["gradnorm_loss"]
            total = gn["log_reg"].to(pids.device)
        else:
            total = torch.zeros((), device=pids.device)
        for i, t in enumerate(self.tasks):
            total = total + weights[i] * losses[t]
            logs[t] = losses[t].detach()
            logs[f"w_{t}"] = weights[i].detach()
        if img.gate is not None:
            logs["gate_id_mean"] = img.gate.detach().mean()
            if self.use_gate_reg:
                reg = gate_regularization(img.gate, modality)
                total = total + self.gate_reg_weight * reg
                logs["gate_reg"] = reg.detach()
        return {"bdam_loss": total, **logs}

    # --- hooks -----------------------------------------------------------------------------
    def set_run_dir(self, path: str | Path) -> None:
        self._run_dir = Path(path)

    def gate_statistics(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-image identity-gate means and per-pair fusion weights seen in eval since the last reset."""
        ident = np.concatenate(self._gate_log) if self._gate_log else np.zeros(0)
        modal = np.concatenate(self._modality_log) if self._modality_log else None
        return ident, modal

    def write_gate_histogram(self, path: str | Path | None = None) -> Path | None:
        """Seed 000 Fig. 4 PNG from the gates logged during evaluation (``run_dir/bdam_gates.png``)."""
        from training.models.bdam.gate_plot import plot_gate_histogram

        ident, modal = self.gate_statistics()
        target = Path(path) if path is not None else (self._run_dir / GATE_PNG if self._run_dir else None)
        if target is None or not len(ident):
            return None
        out = plot_gate_histogram(ident, modal, target)
        self._gate_log.clear()
        self._modality_log.clear()
        return out

    def on_epoch_start(self, epoch: int) -> None:
        self.write_gate_histogram()  # gates logged by the previous validation pass

    def on_epoch_end(self, epoch: int) -> None:
        self.write_gate_histogram()
        self.warn_missing_positives(epoch)

    def _count_positives(self, loss: str, pairs: int) -> None:
        self._positive_pairs[loss] = self._positive_pairs.get(loss, 0) + max(pairs, 0)

    def warn_missing_positives(self, epoch: int) -> list[str]:
        """Warn (and return the names) of the losses that saw no same-identity pair in this epoch's training
        batches (Eq. 4's triplet needs one; e.g. a random sampler over one-image identities), then reset."""
        silent = [k for k, v in self._positive_pairs.items() if v == 0] if self._train_steps else []
        for name in silent:
            log.warning("BDAM epoch %d: the %s loss saw no positive pair (two samples of one identity) in %d "
                        "training batches, so it had no effect; use data.sampler: pk (pk_instances >= 2)",
                        epoch + 1, name, self._train_steps)
        self._positive_pairs = {}
        self._train_steps = 0
        return silent

    def extra_state(self) -> dict[str, Any]:
        return {"gradnorm": self.gradnorm.state_dict()} if self.gradnorm is not None else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.gradnorm is not None and "gradnorm" in state:
            self.gradnorm.load_state_dict(state["gradnorm"])


def _string_labels(texts: list[str]) -> torch.Tensor:
    """Equal strings → equal integer labels (the positives of ``L_aln``: images sharing one clothing description)."""
    index: dict[str, int] = {}
    return torch.tensor([index.setdefault(t, len(index)) for t in texts], dtype=torch.long)


@torch.no_grad()
def two_stage_scores(method: BDAMMethod, query_tokens: torch.Tensor, gallery_images: torch.Tensor,
                     top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 1 cosine [Q, G] and the stage-2 matrix where each query's top-K are re-scored by fusion and
    placed above all other gallery items (the evaluator's rule); gallery features are computed once."""
    img = method.encode_image_states(gallery_images)
    txt = method.encode_text_states(query_tokens)
    q = F.normalize(method.fusion.align_text(txt.pooled).float(), dim=-1)
    g = F.normalize(method.fusion.align_image(img.f_id).float(), dim=-1)
    sim = q @ g.T
    k = min(top_k, sim.shape[1])
    top = sim.topk(k, dim=1).indices
    qi = torch.arange(len(q), device=sim.device)[:, None].expand_as(top).reshape(-1)
    scores, _ = method.pair_scores(img, txt, qi, top.reshape(-1))
    reranked = sim.clone()
    ceiling = sim.max() + 1
    reranked.scatter_(1, top, ceiling + 1 + scores.view(len(q), k))
    return sim, reranked
