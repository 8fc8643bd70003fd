"""The training loop shared by every registered method (DESIGN.md §5 "Engine"; seed 002 §4.2).

One optimizer step = ``accumulation_steps`` micro-batches on each of ``world_size`` processes; the
method's ``forward(batch)`` returns a dict whose ``*_loss`` entries are summed (the method applies its
own weights) and divided by the accumulation count. AMP uses :func:`torch.autocast` (bf16 when the GPU
supports it, else fp16 with a :class:`torch.amp.GradScaler`; CPU runs fp32). Gradients are clipped to
``optim.grad_clip`` (global norm) after unscaling.

Checkpoints every ``checkpoint_every_steps`` optimizer steps and at every epoch end; ``--resume``
restores model, optimizer, scheduler, scaler, RNG, method state (NAM store) and the position in the
epoch (the batch sampler skips the steps already done; augmentation is seeded per sample, so the
resumed run sees the same batches). Validation retrieval at epoch ends selects ``best.pt`` (never
the test split); the test benchmarks of ``eval.benchmarks`` are evaluated with the best checkpoint at
the end and written to ``results.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from eval.evaluator import EvalResult, Evaluator, check_rerank_support
from pedes_core.configuration import save_resolved
from pedes_core.errors import ConfigError, PedesError
from training.config import RecipeConfig
from training.data.collate import TokenizingCollate
from training.data.samplers import GlobalBatchSampler
from training.data.transforms import build_test_transform
from training.engine import checkpoint as ck
from training.engine.cpu_threads import limit_openmp_nesting
from training.engine.data_setup import TrainingData, benchmark_test_set, build_training_data, worker_context
from training.engine.distributed import (
    DistContext,
    barrier,
    broadcast_object,
    cleanup,
    init_distributed,
    mean_across_ranks,
)
from training.engine.monitor import Monitor
from training.engine.optim import build_optimizer, build_scheduler, group_learning_rates
from training.engine.run_dir import create_run_dir, discard_run_dir, resolve_resume

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"


@dataclass
class TrainResult:
    run_dir: Path
    global_step: int
    best_score: float | None
    results: dict[str, Any]
    results_path: Path


def selection_stage(result: EvalResult) -> tuple[str, dict[str, Any]]:
    """The retrieval stage that model selection scores: the re-ranked stage 2 (``t2i_rerank``) when the
    evaluator re-ranks — the ranking the run reports as its final one, e.g. BDAM's fusion re-scoring
    (seed 000 §3.4) — else stage 1 (``t2i``)."""
    if result.t2i_rerank is not None:
        return "t2i_rerank", result.t2i_rerank
    return "t2i", result.t2i


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def amp_dtype_for(choice: str, device: torch.device) -> torch.dtype | None:
    """``None`` = fp32 (always on CPU); ``auto`` = bf16 where supported, else fp16."""
    if device.type != "cuda" or choice == "off":
        return None
    if choice == "bf16" or (choice == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def build_method(recipe: RecipeConfig, num_classes: int, num_captions: int) -> torch.nn.Module:
    """The registered method of the recipe (``method.name`` + ``method.params``)."""
    import training.methods  # noqa: F401  (registers the built-in methods)
    from training.registry import METHODS

    return METHODS.get(recipe.method.name).from_config(recipe, num_classes, num_captions)


class Trainer:
    """Owns one run; :meth:`fit` trains, selects on validation, tests and writes ``results.json``."""

    def __init__(self, recipe: RecipeConfig, *, resume: str | None = None) -> None:
        self._new_run_dir: Path | None = None
        try:
            self._setup(recipe, resume=resume)
        except BaseException:
            discard_run_dir(self._new_run_dir)  # bad input found while setting up: no empty run folder stays
            raise

    def _setup(self, recipe: RecipeConfig, *, resume: str | None = None) -> None:
        self.recipe = recipe
        #: ``--resume`` named a checkpoint file: load exactly it (no fallback to an older one)
        self._resume_exact = bool(resume) and resume != "latest" and Path(str(resume)).is_file()
        eng = recipe.engine
        limit_openmp_nesting()  # in this thread: Prefect runs tasks in worker threads
        self.ctx: DistContext = init_distributed(eng.device, eng.ddp_backend)
        seed_everything(eng.seed, eng.deterministic)
        self.device = self.ctx.device
        self.amp_dtype = amp_dtype_for(eng.amp, self.device)
        assert eng.run_name is not None
        resume_ckpt: Path | None = None
        if self.ctx.is_main:
            if resume:
                run_dir, resume_ckpt = resolve_resume(resume, eng.output_dir, eng.run_name)
            else:
                run_dir = self._new_run_dir = create_run_dir(eng.output_dir, eng.run_name)
                save_resolved(recipe, run_dir)
            shared = (str(run_dir), str(resume_ckpt) if resume_ckpt else None)
        else:
            shared = None
        run_str, ckpt_str = broadcast_object(self.ctx, shared)
        self.run_dir = Path(run_str)
        resume_ckpt = Path(ckpt_str) if ckpt_str else None

        self.data: TrainingData = build_training_data(recipe, self.run_dir, self.ctx)
        self.method = build_method(recipe, self.data.num_classes, self.data.num_captions)
        check_rerank_support(self.method, recipe.eval.rerank_top_k)  # before any training, not at validation
        if recipe.method.pretrained is not None:
            self.method.load_pretrained(recipe.method.pretrained)
        self.method.set_run_dir(self.run_dir)
        self.method.to(self.device)
        self.tokenizer = self.method.tokenizer
        if self.tokenizer is None:
            from training.tokenization import ClipTokenizer

            self.tokenizer = ClipTokenizer(recipe.model.context_length)

        self.sampler = GlobalBatchSampler(
            self.data.order_fn,
            len(self.data.dataset),
            recipe.data.batch_size,
            world_size=self.ctx.world_size,
            rank=self.ctx.rank,
            accumulation=eng.accumulation_steps,
        )
        self.steps_per_epoch = self.sampler.steps_per_epoch()
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"data.batch_size: {len(self.data.dataset)} training samples cannot fill one global batch of "
                f"{self.sampler.global_batch} (batch_size × processes × accumulation_steps)"
            )
        self.optimizer = build_optimizer(self.method, recipe.optim)
        self.scheduler = build_scheduler(self.optimizer, recipe.schedule, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.model: torch.nn.Module = self.method
        if self.ctx.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.method, device_ids=ids)
        self.progress: dict[str, Any] = {
            "epoch": 0,
            "step_in_epoch": 0,
            "global_step": 0,
            "best_score": None,
            "best_epoch": None,
            "finished": False,
        }
        if resume_ckpt is not None:
            self._restore(resume_ckpt)
        self.monitor = Monitor(
            self.run_dir, enabled=self.ctx.is_main, progress=eng.progress, tensorboard=eng.tensorboard
        )
        self.collate = TokenizingCollate(self.tokenizer)

    # --- checkpoints ---------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "method": self.recipe.method.name,
            "num_classes": self.data.num_classes,
            "num_captions": self.data.num_captions,
            "world_size": self.ctx.world_size,
        }

    def _light_state(self) -> dict[str, Any]:
        return {
            "model": self.method.state_dict(),
            "meta": self._meta(),
            "config": self.recipe.model_dump(mode="json"),
            "progress": dict(self.progress),
        }

    def _full_state(self) -> dict[str, Any]:
        state = self._light_state()
        state.update(
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(),
            rng=ck.capture_rng(),
            method_state=self.method.extra_state(),
        )
        return state

    def save_step_checkpoint(self) -> Path | None:
        path = None
        if self.ctx.is_main:
            path = ck.save_atomic(self._full_state(), ck.step_path(self.run_dir, self.progress["global_step"]))
            ck.prune(self.run_dir, self.recipe.engine.keep_last_checkpoints)
        barrier(self.ctx)
        return path

    def _restore(self, path: Path) -> None:
        # a corrupt latest step checkpoint falls back to the newest older one that loads (with a warning)
        state, path = ck.load_resumable(path, map_location=self.device, fallback=not self._resume_exact)
        if state.get("meta", {}).get("num_classes") not in (None, self.data.num_classes):
            raise ConfigError(f"{path}: checkpoint has {state['meta']['num_classes']} classes, data has {self.data.num_classes}")
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.method.load_extra_state(state.get("method_state", {}))
        ck.restore_rng(state["rng"])
        self.progress.update(state["progress"])
        log.info("resumed from %s at global step %d", path, self.progress["global_step"])

    # --- one optimizer step ----------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        nb = self.device.type == "cuda"
        return {k: v.to(self.device, non_blocking=nb) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _micro_step(self, batch: dict[str, Any], sync: bool) -> dict[str, float]:
        accum = self.recipe.engine.accumulation_steps
        ctx = self.model.no_sync() if (self.ctx.distributed and not sync) else contextlib.nullcontext()
        with ctx:
            with self._autocast():
                out = self.model(self._to_device(batch))
            losses = [v for k, v in out.items() if k.endswith("_loss")]
            if not losses:
                raise RuntimeError(f"method {self.recipe.method.name!r} returned no '*_loss' entry")
            loss = torch.stack([v.float() for v in losses]).sum()
            if not torch.isfinite(loss):
                raise RuntimeError(f"non-finite loss at global step {self.progress['global_step']}: {out}")
            self.scaler.scale(loss / accum).backward()
        logged = {k: float(v.detach()) for k, v in out.items() if isinstance(v, torch.Tensor) and v.numel() == 1}
        logged["loss"] = float(loss.detach())
        return logged

    def _optimizer_step(self) -> float | None:
        clip = self.recipe.optim.grad_clip
        grad_norm = None
        if clip is not None:
            self.scaler.unscale_(self.optimizer)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.method.parameters(), clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return grad_norm

    # --- validation / test ----------------------------------------------------------------------
    def evaluator(self) -> Evaluator:
        return Evaluator(
            self.method,
            tokenizer=self.tokenizer,
            transform=build_test_transform(self.recipe.model.image_size, self.recipe.data.augment),
            device=self.device,
            batch_size=self.recipe.eval.batch_size,
            num_workers=self.recipe.data.num_workers,
            amp_dtype=self.amp_dtype,
            rerank_top_k=self.recipe.eval.rerank_top_k,
            msd_order=self.recipe.eval.msd_order,
        )

    def validate(self, epoch: int) -> None:
        """Rank 0 evaluates the validation split; a better score writes ``best.pt``."""
        if self.data.val_set is None:
            return
        if self.ctx.is_main:
            result = self.evaluator().run(self.data.val_set)
            metric = self.recipe.eval.select_metric
            stage, selected = selection_stage(result)
            score = float(selected[metric])
            summary = result.summary()
            logged = {"epoch": epoch + 1, **summary["t2i"]}
            if summary["t2i_rerank"] is not None:
                logged.update({f"rerank_{k}": v for k, v in summary["t2i_rerank"].items()})
            self.monitor.log("val", self.progress["global_step"], logged)
            self.progress["best_stage"] = stage
            best = self.progress["best_score"]
            if best is None or score > best:
                self.progress["best_score"] = score
                self.progress["best_epoch"] = epoch + 1
                ck.save_atomic(self._light_state(), self.run_dir / ck.CHECKPOINT_DIR / ck.BEST_NAME)
            log.info("epoch %d validation %s %.2f (best %.2f)", epoch + 1, metric, score, self.progress["best_score"])
        self.progress = broadcast_object(self.ctx, self.progress)

    # --- the loop ------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        try:
            self._train_loop()
            return self._finish()
        finally:
            self.monitor.close()

    def _max_steps(self) -> int:
        total = self.steps_per_epoch * self.recipe.schedule.epochs
        cap = self.recipe.schedule.max_steps
        return min(total, cap) if cap is not None else total

    def _train_loop(self) -> None:
        eng, sched = self.recipe.engine, self.recipe.schedule
        accum = eng.accumulation_steps
        max_steps = self._max_steps()
        global_batch = self.sampler.global_batch
        self.model.train()
        while self.progress["epoch"] < sched.epochs and self.progress["global_step"] < max_steps:
            epoch = self.progress["epoch"]
            start_step = self.progress["step_in_epoch"]
            self.method.on_epoch_start(epoch)
            self.data.dataset.set_epoch(epoch)
            self.sampler.set_epoch(epoch, start_step)
            loader = DataLoader(
                self.data.dataset,
                batch_sampler=self.sampler,
                num_workers=self.recipe.data.num_workers,
                multiprocessing_context=(worker_context(self.recipe.data.worker_start_method, self.data.dataset,
                                                        self.collate) if self.recipe.data.num_workers else None),
                collate_fn=self.collate,
                pin_memory=self.device.type == "cuda",
                generator=torch.Generator().manual_seed(eng.seed + epoch),
            )
            self.monitor.start_epoch(epoch, sched.epochs, self.steps_per_epoch, start_step)
            stopped_early = False
            micro: list[dict[str, float]] = []
            t0 = time.perf_counter()
            for i, batch in enumerate(loader):
                last_micro = (i + 1) % accum == 0
                micro.append(self._micro_step(batch, sync=last_micro))
                if not last_micro:
                    continue
                lr = self.optimizer.param_groups[0]["lr"]  # the LR this step used
                group_lrs = group_learning_rates(self.optimizer) if self.recipe.optim.group_lr else {}
                grad_norm = self._optimizer_step()
                self.progress["global_step"] += 1
                self.progress["step_in_epoch"] += 1
                step = self.progress["global_step"]
                values = {k: sum(m.get(k, 0.0) for m in micro) / len(micro) for k in micro[0]}
                micro = []
                dt = time.perf_counter() - t0
                t0 = time.perf_counter()
                sps = global_batch / dt if dt > 0 else 0.0
                self.monitor.advance(values["loss"], lr, sps)
                if step % eng.log_every_steps == 0 or step == max_steps:
                    values = mean_across_ranks(self.ctx, values)
                    record = {"epoch": epoch + 1, "lr": lr, "samples_per_s": sps, **values}
                    record.update({f"lr_{name}": value for name, value in group_lrs.items()})
                    if grad_norm is not None:
                        record["grad_norm"] = grad_norm
                    self.monitor.log("train", step, record)
                if step >= max_steps:
                    stopped_early = self.progress["step_in_epoch"] < self.steps_per_epoch
                    break
                if step % eng.checkpoint_every_steps == 0:
                    self.save_step_checkpoint()
            self.monitor.end_epoch()
            if stopped_early:  # max_steps reached mid-epoch: the end of training, so validate this state too
                self.validate(epoch)
                self.save_step_checkpoint()
                break
            self.method.on_epoch_end(epoch)
            self._log_epoch_stats(epoch)
            self.progress["epoch"] = epoch + 1
            self.progress["step_in_epoch"] = 0
            if (epoch + 1) % self.recipe.eval.every_epochs == 0 or epoch + 1 == sched.epochs:
                self.validate(epoch)
            self.save_step_checkpoint()

    def _log_epoch_stats(self, epoch: int) -> None:
        """Per-epoch method scalars (``method.epoch_stats()``, e.g. ``nam_coverage``) → metrics.jsonl
        (``type: epoch``) and TensorBoard (``epoch/<name>``); warns once when NAM masked fewer than half
        of an epoch's captions from a stored ``r`` after the first epoch (seed 002 §3.2: NAM is then
        mostly equal masking)."""
        stats = self.method.epoch_stats() if hasattr(self.method, "epoch_stats") else {}
        if not stats or not self.ctx.is_main:
            return
        self.monitor.log("epoch", self.progress["global_step"], {"epoch": epoch + 1, **stats})
        coverage = stats.get("nam_coverage")
        if coverage is not None and epoch >= 1 and coverage < 0.5 and not getattr(self, "_coverage_warned", False):
            self._coverage_warned = True
            log.warning(
                "NAM: only %.0f%% of epoch %d's captions were masked from a stored r (the rest with p, i.e. "
                "equal masking); with data.captions_per_epoch=%s a caption is scored only when it is visited. "
                "Use data.captions_per_epoch: all to score every caption each epoch",
                100 * coverage, epoch + 1, self.recipe.data.captions_per_epoch,
            )

    def _finish(self) -> TrainResult:
        self.progress["finished"] = True
        results: dict[str, Any] = {}
        results_path = self.run_dir / RESULTS_FILE
        if self.ctx.is_main:
            ckpt_dir = self.run_dir / ck.CHECKPOINT_DIR
            ck.save_atomic(self._light_state(), ckpt_dir / ck.FINAL_NAME)
            best_path = ckpt_dir / ck.BEST_NAME
            selected = best_path if best_path.is_file() else ckpt_dir / ck.FINAL_NAME
            if selected == best_path:
                self.method.load_state_dict(ck.load_checkpoint(best_path, map_location=self.device)["model"])
            tests: dict[str, Any] = {}
            evaluator = self.evaluator()
            for source in self.recipe.eval.benchmarks:
                result = evaluator.run(benchmark_test_set(source, "test"))
                tests[source.display] = result.summary()
                self.monitor.log("test", self.progress["global_step"], {"benchmark": source.display, **result.summary()["t2i"]})
                if self.recipe.eval.cmc_plot:
                    self._cmc(result)
            results = {
                "run_dir": str(self.run_dir),
                "method": self.recipe.method.name,
                "data": self.data.info,
                "global_step": self.progress["global_step"],
                "epochs_done": self.progress["epoch"],
                "selection": {
                    "metric": self.recipe.eval.select_metric,
                    "stage": self.progress.get("best_stage"),  # t2i_rerank when two-stage retrieval is on
                    "split": "validation" if self.data.val_set is not None else None,
                    "best_score": self.progress["best_score"],
                    "best_epoch": self.progress["best_epoch"],
                },
                "checkpoint": str(selected),
                "eval": {"msd_order": self.recipe.eval.msd_order, "rerank_top_k": self.recipe.eval.rerank_top_k},
                "test": tests,
            }
            tmp = results_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=2, default=float))
            tmp.replace(results_path)
        barrier(self.ctx)
        return TrainResult(self.run_dir, self.progress["global_step"], self.progress["best_score"], results, results_path)

    def _cmc(self, result: EvalResult) -> None:
        from eval.reports import plot_cmc

        if "cmc" in result.t2i:
            plot_cmc({result.name: result.t2i["cmc"]}, self.run_dir / f"cmc-{result.name}.png")


def train(recipe: RecipeConfig, *, resume: str | None = None) -> TrainResult:
    """Run a recipe (single process, or one rank under ``torchrun``)."""
    trainer = Trainer(recipe, resume=resume)
    try:
        return trainer.fit()
    except PedesError:
        if trainer._new_run_dir is not None:
            discard_run_dir(trainer._new_run_dir)  # only when it holds no checkpoint or results
        raise
    finally:
        cleanup(trainer.ctx)

