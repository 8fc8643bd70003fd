"""``train_captioner(cfg) -> Path``: train (or reuse) a small VLM captioner (LLaVA or Qwen2-VL,
:mod:`caption_gen.captioner.architecture`) on synthetic pedestrians.

Caching: the trained folder lives at ``<cache_dir>/captioner-<key>``, ``key`` = hash of the config and
the data (:meth:`CaptionerConfig.cache_key`); a second call with the same config and data returns it
without training. With ``cfg.out`` the folder is also copied there (reused when ``out`` already holds
the same key). Every folder holds ``captioner.json`` (key, config, data, timings, final losses) next to
the ``save_pretrained`` files. The vision stage is cached on its own (``<cache_dir>/vision-<key>.pt``,
:meth:`CaptionerConfig.vision_stage_key`): a noisy captioner of the same seed, or one with other joint
steps, starts from the same trained tower without training it again.

Objective: next-token cross-entropy on the answer (prompt masked), plus an auxiliary attribute
classification loss (``aux_weight``) on the projected image tokens that makes the vision tower learn
the attributes quickly; the auxiliary head is discarded — the saved model is a plain LLaVA / Qwen2-VL.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from caption_gen.captioner.architecture import CaptionerArch, build_arch
from caption_gen.captioner.config import TRAINER_VERSION, CaptionerConfig
from caption_gen.captioner.records import CAPTIONER_SEED_BASE, data_fingerprint, load_records
from pedes_core.errors import InputError

STAMP = "captioner.json"
_log = logging.getLogger(__name__)


def training_synth(cfg: CaptionerConfig) -> Path:
    """The synth folder to train on: ``cfg.synthetic``; else, for a continuation (``init_from``), the people its
    parent was trained on (already rendered, disjoint from every evaluation split; the continuation draws its
    own examples with its own seed and noise); else the reserved-seed set in the cache (rendered once)."""
    if cfg.synthetic is not None:
        return Path(cfg.synthetic)
    parent = _parent_synth(cfg)
    if parent is not None:
        return parent
    from caption_gen.synth import render_dataset

    seed = CAPTIONER_SEED_BASE + cfg.seed
    root = cfg.resolved_cache_dir() / f"synth-s{seed}-{cfg.synth_identities}x{cfg.synth_images_per_identity}"
    if not (root / "synth.json").exists():
        render_dataset(root, identities=cfg.synth_identities, images_per_identity=cfg.synth_images_per_identity,
                       seed=seed, val_fraction=0.0, test_fraction=0.0)
    return root


def _parent_synth(cfg: CaptionerConfig) -> Path | None:
    """The training folder recorded in the stamp of ``cfg.init_from``, when it still exists."""
    if cfg.init_from is None:
        return None
    try:
        folder = Path(json.loads((Path(cfg.init_from) / STAMP).read_text())["synthetic"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return folder if (folder / "attributes.jsonl").exists() else None


def _stamp_key(folder: Path) -> str | None:
    try:
        return json.loads((folder / STAMP).read_text())["key"]
    except (OSError, ValueError, KeyError):
        return None


def train_captioner(cfg: CaptionerConfig, *, log: Callable[[str], None] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Path:
    """Train the captioner of ``cfg`` (or reuse the cached one) and return its model folder.

    ``log`` receives the summary lines (data, reuse); the per-``log_every`` loss lines go to ``log`` too,
    unless ``progress(step, total)`` is given (called after every optimizer step), in which case they go to
    this module's logger (the CLI's log file) and the caller draws a bar."""
    say = log or (lambda _msg: None)
    synth = training_synth(cfg)
    key = cfg.cache_key(data_fingerprint(synth))
    cached = cfg.resolved_cache_dir() / f"captioner-{key}"
    out = Path(cfg.out) if cfg.out is not None else None
    if out is not None and _stamp_key(out) == key:
        say(f"reusing captioner {key} at {out}")
        return out
    if out is not None and out.exists() and any(out.iterdir()) and _stamp_key(out) is None:
        raise InputError(f"{out}: exists and is not a captioner folder (no {STAMP}); choose an empty --out")
    if _stamp_key(cached) == key:
        say(f"reusing cached captioner {key} ({cached})")
    else:
        tmp = cached.with_name(f".tmp-{cached.name}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        _train(cfg, synth, key, tmp, say, progress)
        shutil.rmtree(cached, ignore_errors=True)
        os.replace(tmp, cached)
    if out is None:
        return cached
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(cached, out)
    return out


def _lr_at(step: int, cfg: CaptionerConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


#: dtype of the in-memory caches (pixels, frozen tower features): storage only, every batch is cast back
#: to float32 before it is computed on (halves the memory of 16,000 images at 128²).
CACHE_DTYPE = "float16"


def _loss_line(line: str, key: str, say: Callable[[str], None], *, bar: bool) -> None:
    """A loss line goes to the caller's ``say``, or — when the caller draws a progress bar — to the log file."""
    if bar:
        _log.info("captioner %s:%s", key, line)
    else:
        say(line)


def _vision_stage(cfg: CaptionerConfig, arch: CaptionerArch, model: Any, aux_head: Any, sizes: list[int],
                  sampler: Any, key: str, say: Callable[[str], None],
                  progress: Callable[[int, int], None] | None) -> list[dict[str, float]]:
    """Stage 1: the vision tower and the projector learn the attributes from the auxiliary loss alone
    (``cfg.vision_steps`` steps of ``cfg.vision_batch_size`` images, warm-up + cosine like the joint stage);
    the language model is untouched. Returns the loss history."""
    import torch

    params = [*arch.tower(model).parameters(), *arch.projector(model).parameters(), *aux_head.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98), fused=True)
    stage = cfg.model_copy(update={"steps": cfg.vision_steps})
    history, run, t0 = [], 0.0, time.perf_counter()
    for step in range(cfg.vision_steps):
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, stage)
        pixels, target = sampler.sample_images(cfg.vision_batch_size, cfg.vision_hflip)
        logits = aux_head(arch.project(model, arch.tower_tokens(model, pixels)))
        loss = sum(torch.nn.functional.cross_entropy(lg, target[:, j]) for j, lg in enumerate(logits)) / len(sizes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        run = 0.9 * run + 0.1 * float(loss.detach()) if step else float(loss.detach())
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.vision_steps:
            el = time.perf_counter() - t0
            history.append({"vision_step": step + 1, "aux_loss": round(run, 4), "seconds": round(el, 1)})
            line = f"  vision step {step + 1}/{cfg.vision_steps}  aux {run:.3f}  {el:.0f} s"
            _loss_line(line, key, say, bar=progress is not None)
        if progress is not None:
            progress(step + 1, cfg.vision_steps + cfg.steps)
    return history


def _cached_vision_stage(cfg: CaptionerConfig, arch: CaptionerArch, fingerprint: str, model: Any, aux_head: Any,
                         sizes: list[int], sampler: Any, key: str, say: Callable[[str], None],
                         progress: Callable[[int, int], None] | None) -> list[dict[str, float]]:
    """:func:`_vision_stage`, or its result reused from ``<cache_dir>/vision-<key>.pt`` when a captioner with
    the same :meth:`CaptionerConfig.vision_stage_key` trained it before (the vision stage draws from its own
    generator, so the joint stage is the same either way). Writes the file after training it."""
    import torch

    vkey = cfg.vision_stage_key(fingerprint)
    path = cfg.resolved_cache_dir() / f"vision-{vkey}.pt" if vkey is not None else None
    parts = {"vision_tower": arch.tower(model), "projector": arch.projector(model), "aux_head": aux_head}
    if path is not None and path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        for name, module in parts.items():
            module.load_state_dict(saved[name])
        say(f"captioner {key}: reusing the vision stage {vkey} ({cfg.vision_steps} steps, {path})")
        if progress is not None:
            progress(cfg.vision_steps, cfg.vision_steps + cfg.steps)
        return [{**h, "reused": vkey} for h in saved["history"]]
    history = _vision_stage(cfg, arch, model, aux_head, sizes, sampler, key, say, progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
        torch.save({**{name: m.state_dict() for name, m in parts.items()}, "history": history}, tmp)
        os.replace(tmp, path)
    return history


def _vision_features(arch: CaptionerArch, model: Any, pixel_values: Any, batch: int = 128) -> Any:
    """Freeze the vision tower and return its output tokens (:meth:`CaptionerArch.tower_tokens`) of every
    training image, in :data:`CACHE_DTYPE` — computed once, so a joint step skips the tower."""
    import torch

    tower = arch.tower(model)
    tower.requires_grad_(False)
    tower.eval()
    with torch.no_grad():
        out = [arch.tower_tokens(model, pixel_values[i:i + batch].float()).to(getattr(torch, CACHE_DTYPE))
               for i in range(0, len(pixel_values), batch)]
    return torch.cat(out)


def _embeds_with_image(arch: CaptionerArch, model: Any, input_ids: Any, features: Any) -> tuple[Any, Any]:
    """The language model's input embeddings with the image-token positions replaced by the projected
    tower ``features`` — what the model's forward does with pixels, from cached tower outputs — and the
    projected image tokens themselves (the auxiliary loss reads them)."""
    embeds = model.get_input_embeddings()(input_ids)
    image = arch.project(model, features)
    mask = (input_ids == arch.image_token_id(model)).unsqueeze(-1).expand_as(embeds)
    return embeds.masked_scatter(mask, image.to(embeds.dtype)), image


def _answer_loss(arch: CaptionerArch, model: Any, batch: dict[str, Any], features: Any) -> tuple[Any, Any]:
    """Next-token cross-entropy on the answer tokens of a packed batch (:func:`caption_gen.captioner.examples.
    pack_examples`; ``position_ids`` already the language model's, :meth:`CaptionerArch.lm_positions`): the
    tower's ``features`` of the batch's images are projected into the image positions, the language model
    runs with the batch's 4-D mask and positions, and the vocabulary projection is computed only where a
    label is (the answers are ~20 % of the positions) — the mean over answer tokens, as the model's own loss
    on the unpacked examples. Returns the loss and the projected image tokens."""
    import torch

    embeds, image = _embeds_with_image(arch, model, batch["input_ids"], features)
    hidden = model.model.language_model(inputs_embeds=embeds, attention_mask=batch["attention_mask"],
                                        position_ids=batch["position_ids"]).last_hidden_state
    target = batch["labels"][:, 1:]
    keep = target != -100
    return torch.nn.functional.cross_entropy(model.lm_head(hidden[:, :-1][keep]), target[keep]), image


def _train(cfg: CaptionerConfig, synth: Path, key: str, out: Path, say: Callable[[str], None],
           progress: Callable[[int, int], None] | None = None) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from caption_gen.captioner.aux_heads import build_aux_head
    from caption_gen.captioner.examples import AUX_ATTRIBUTES, BatchSampler, engine_prompts
    from caption_gen.captioner.vocabulary import instruction_phrases, tokenizer_corpus, train_tokenizer
    from caption_gen.instructions.bank import InstructionSet

    t0 = time.perf_counter()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    records = load_records(synth, cfg.splits)
    fingerprint = data_fingerprint(synth)
    instructions = InstructionSet.load()
    texts = [instructions.render(k, image_id="-", seed=0).text for k in ("static", "identity", "clothing")]
    texts += [instructions.render("dynamic", image_id="-", seed=0, template_id=t.template_id).text
              for t in instructions.templates]
    arch = build_arch(cfg)
    first = Image.open(records[0].path).convert("RGB")  # sizes Qwen2-VL's processor; renders the prompts
    if cfg.init_from is not None:
        try:
            parent = json.loads((Path(cfg.init_from) / "config.json").read_text()).get("model_type")
        except (OSError, ValueError) as exc:
            raise InputError(f"{cfg.init_from}: init_from is not a captioner folder ({exc})") from exc
        if parent != arch.model_type:
            raise InputError(f"{cfg.init_from}: init_from is a {parent!r} model; arch {cfg.arch!r} continues a "
                             f"{arch.model_type!r} one")
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(cfg.init_from)
        tokenizer = processor.tokenizer
    else:
        tokenizer = train_tokenizer(tokenizer_corpus(texts, cfg.seed), cfg.vocab_size, instruction_phrases(instructions),
                                    specials=arch.specials, chat_template=arch.chat_template)
        processor = arch.build_processor(tokenizer, (first.height, first.width))
    pixels = []
    for start in range(0, len(records), 256):
        chunk = records[start:start + 256]
        imgs = [Image.open(r.path).convert("RGB") for r in chunk]
        pixels.append(arch.image_pixels(processor, imgs, [str(r.path) for r in chunk]).to(getattr(torch, CACHE_DTYPE)))
    pixel_values = torch.cat(pixels)
    prompts = engine_prompts(instructions, processor, first)
    t_data = time.perf_counter() - t0
    say(f"captioner {key}: {len(records)} images of {len({r.person_id for r in records})} people from {synth}, "
        f"vocab {len(tokenizer)}, {len(prompts)} prompts ({t_data:.1f} s)")

    if cfg.init_from is not None:
        torch.manual_seed(cfg.seed)
        model = arch.load_model(Path(cfg.init_from))
    else:
        model = arch.build_model(tokenizer, seed=cfg.seed)
    n_tokens = prompts[0].input_ids.count(arch.image_token_id(model))
    sizes = [len(v) for v in AUX_ATTRIBUTES.values()]
    aux_head = build_aux_head(cfg.aux_head, n_tokens, model.config.text_config.hidden_size, sizes)
    sampler = BatchSampler(records, pixel_values, prompts, tokenizer, kind_weights=cfg.kind_weights,
                           noise=cfg.noise, seed=cfg.seed,
                           image_token=arch.image_token_id(model), mirror=arch.mirror)
    model.train()
    history: list[dict[str, float]] = []
    t_vision = time.perf_counter()
    if cfg.vision_steps:
        history += _cached_vision_stage(cfg, arch, fingerprint, model, aux_head, sizes, sampler, key, say, progress)
    features = _vision_features(arch, model, pixel_values) if cfg.freeze_vision else None
    params = [p for p in model.parameters() if p.requires_grad] + list(aux_head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98), fused=True)
    run_lm = run_aux = 0.0
    queued: list[dict[str, Any]] = []
    t_train = time.perf_counter()
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, cfg)
        if not queued:
            queued = sampler.sample_by_length(min(cfg.length_groups, cfg.steps - step), cfg.batch_size,
                                              cfg.examples_per_image)
        batch = queued.pop()
        aux_target = batch.pop("aux")
        index = batch["index"]
        batch["position_ids"] = arch.lm_positions(model, sampler.prefix_ids, batch["position_ids"])
        tokens = (features[index].float() if features is not None
                  else arch.tower_tokens(model, sampler.pixels_of(index)))
        lm_loss, image = _answer_loss(arch, model, batch, tokens)
        loss = lm_loss
        aux_loss = torch.zeros(())
        if cfg.aux_weight > 0:
            logits = aux_head(image)
            aux_loss = sum(torch.nn.functional.cross_entropy(lg, aux_target[:, j]) for j, lg in enumerate(logits))
            aux_loss = aux_loss / len(sizes)
            loss = loss + cfg.aux_weight * aux_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        lm = float(lm_loss.detach())
        run_lm = 0.9 * run_lm + 0.1 * lm if step else lm
        ax = float(aux_loss.detach())
        run_aux = 0.9 * run_aux + 0.1 * ax if step else ax
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            el = time.perf_counter() - t_train
            history.append({"step": step + 1, "lm_loss": round(run_lm, 4), "aux_loss": round(run_aux, 4),
                            "seconds": round(el, 1)})
            line = f"  step {step + 1}/{cfg.steps}  lm {run_lm:.3f}  aux {run_aux:.3f}  {el:.0f} s"
            _loss_line(line, key, say, bar=progress is not None)
        if progress is not None:
            progress(cfg.vision_steps + step + 1, cfg.vision_steps + cfg.steps)
    model.eval()
    arch.save(model, processor, out)
    stamp = {
        "key": key, "trainer_version": TRAINER_VERSION, "config": cfg.model_dump(mode="json"),
        "synthetic": str(synth), "data_fingerprint": fingerprint,
        "images": len(records), "people": len({r.person_id for r in records}), "splits": cfg.splits,
        "vision_seconds": round(t_train - t_vision, 1), "train_seconds": round(time.perf_counter() - t_train, 1), "total_seconds": round(time.perf_counter() - t0, 1),
        "torch_threads": torch.get_num_threads(), "history": history,
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    (out / STAMP).write_text(json.dumps(stamp, indent=2))
    del np
