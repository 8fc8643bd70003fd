"""Evaluation protocols of seed 002: direct transfer (Table 3) and fine-tuning (Table 4).

* direct transfer: a *pretrained* checkpoint evaluated straight on each target benchmark's test split;
* fine-tune: a checkpoint fine-tuned on a *source* benchmark evaluated on every target's test split
  (the diagonal is in-domain, the rest is the cross-domain matrix).

A protocol file (YAML, :class:`ProtocolConfig`) lists the target benchmarks and the checkpoints (a
``.pt`` file or a run directory, whose ``best.pt`` — else ``final.pt`` — is used).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from pedes_core.configuration import ConfigModel, ConfigPath
from pedes_core.errors import ConfigError
from training.config import BenchmarkSourceConfig, RecipeConfig


class DirectTransferRow(ConfigModel):
    init: str  # row label, e.g. "Ours (synthetic corpus)"
    checkpoint: ConfigPath


class FinetuneRow(ConfigModel):
    init: str
    source: str  # label of the benchmark it was fine-tuned on (a target label)
    checkpoint: ConfigPath


class ProtocolConfig(ConfigModel):
    benchmarks: list[BenchmarkSourceConfig] = Field(min_length=1)
    direct_transfer: list[DirectTransferRow] = Field(default_factory=list)
    finetune: list[FinetuneRow] = Field(default_factory=list)
    split: Literal["test", "val"] = "test"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(128, ge=1)
    num_workers: int = Field(0, ge=0)
    #: mSD order for every checkpoint (``ranked``: seed 004 §3.4; ``gallery``: the public UFineBench
    #: calculator); ``None`` = each checkpoint's recipe ``eval.msd_order``. Written into every table.
    msd_order: Literal["ranked", "gallery"] | None = None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory's ``checkpoints/best.pt`` (else ``final.pt``)."""
    from training.engine.checkpoint import BEST_NAME, FINAL_NAME
    from training.engine.run_dir import CHECKPOINT_DIR

    p = Path(path)
    if p.is_dir():
        for name in (BEST_NAME, FINAL_NAME):
            if (p / CHECKPOINT_DIR / name).is_file():
                return p / CHECKPOINT_DIR / name
        raise ConfigError(f"{p}: run directory without {CHECKPOINT_DIR}/{BEST_NAME} or {FINAL_NAME}")
    if not p.is_file():
        raise ConfigError(f"checkpoint not found: {p}")
    return p


def load_trained_method(path: str | Path, device: Any = "cpu") -> tuple[Any, RecipeConfig]:
    """Rebuild the method saved by the engine (its recipe is stored in the checkpoint) and load its weights."""
    import torch

    from training.engine.checkpoint import load_checkpoint
    from training.engine.trainer import build_method

    ckpt_path = resolve_checkpoint(path)
    state = load_checkpoint(ckpt_path)
    if "config" not in state or "meta" not in state:
        raise ConfigError(f"{ckpt_path}: checkpoint lacks its recipe ('config'/'meta'); not written by pedes train")
    recipe = RecipeConfig.model_validate(state["config"])
    meta = state["meta"]
    method = build_method(recipe, int(meta["num_classes"]), int(meta["num_captions"]))
    method.load_state_dict(state["model"])
    method.to(torch.device(device))
    method.eval()
    return method, recipe


def evaluate_checkpoint(path: str | Path, targets: list[Any], *, device: str = "auto", batch_size: int = 128,
                        num_workers: int = 0, split: str = "test", msd_order: str | None = None,
                        progress: Callable[[str, int], Callable[[int], None]] | None = None) -> dict[str, Any]:
    """Summaries (``EvalResult.summary()`` plus the CMC curves) of one checkpoint on each target.

    The recipe's ``eval.rerank_top_k`` applies (both stages reported, ``t2i`` and ``t2i_rerank``);
    ``msd_order`` overrides the recipe's ``eval.msd_order`` when given. ``progress(label, total)``, when
    given, is called once per target and returns the ``advance(n)`` callback of its encoding."""
    from eval.evaluator import Evaluator
    from training.data.transforms import build_test_transform
    from training.engine.cpu_threads import limit_openmp_nesting
    from training.engine.data_setup import benchmark_test_set
    from training.engine.distributed import pick_device
    from training.engine.trainer import amp_dtype_for

    limit_openmp_nesting()
    dev = pick_device(device)
    method, recipe = load_trained_method(path, dev)
    evaluator = Evaluator(
        method,
        tokenizer=method.tokenizer,
        transform=build_test_transform(recipe.model.image_size, recipe.data.augment),
        device=dev,
        batch_size=batch_size,
        num_workers=num_workers,
        amp_dtype=amp_dtype_for(recipe.engine.amp, dev),
        rerank_top_k=recipe.eval.rerank_top_k,
        msd_order=msd_order or recipe.eval.msd_order,
    )
    out: dict[str, Any] = {}
    for target in targets:
        data = benchmark_test_set(target, split)
        if progress is not None:
            evaluator.progress = progress(f"encode {target.display} ({split})",
                                          len(data.query_texts) + len(data.gallery_paths))
        result = evaluator.run(data)
        summary = result.summary()
        summary["cmc"] = [float(v) for v in result.t2i.get("cmc", [])]
        if result.t2i_rerank is not None:
            summary["cmc_rerank"] = [float(v) for v in result.t2i_rerank.get("cmc", [])]
        summary["checkpoint"] = str(resolve_checkpoint(path))
        out[target.display] = summary
    return out


def _stage_rows(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Table rows of stage 1 (``t2i``), plus a ``<row> + re-rank`` row (``t2i_rerank``) where a target has one."""
    from eval.reports import RERANK_SUFFIX

    out: dict[str, dict[str, Any]] = {}
    for label, by_target in rows.items():
        out[label] = {t: s["t2i"] for t, s in by_target.items()}
        reranked = {t: s["t2i_rerank"] for t, s in by_target.items() if s.get("t2i_rerank")}
        if reranked:
            out[label + RERANK_SUFFIX] = reranked
    return out


def run_protocol(cfg: ProtocolConfig, out_dir: str | Path) -> dict[str, Any]:
    """Evaluate every row, write ``protocol.json``, ``direct_transfer.md``, ``finetune.md`` and CMC PNGs."""
    from eval.reports import direct_transfer_table, finetune_table, plot_cmc, write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = [b.display for b in cfg.benchmarks]
    for row in cfg.finetune:
        if row.source not in labels:
            raise ConfigError(f"finetune row {row.init!r}: source {row.source!r} is not a benchmark label ({labels})")
    kw = {"device": cfg.device, "batch_size": cfg.batch_size, "num_workers": cfg.num_workers, "split": cfg.split,
          "msd_order": cfg.msd_order}
    direct: dict[str, dict[str, Any]] = {}
    for row in cfg.direct_transfer:
        direct[row.init] = evaluate_checkpoint(row.checkpoint, cfg.benchmarks, **kw)
    finetune: dict[str, dict[str, dict[str, Any]]] = {}
    for row in cfg.finetune:
        finetune.setdefault(row.init, {})[row.source] = evaluate_checkpoint(row.checkpoint, cfg.benchmarks, **kw)
    t2i_direct = _stage_rows(direct)
    t2i_ft = {i: _stage_rows(by) for i, by in finetune.items()}
    orders = sorted({s["msd_order"] for r in direct.values() for s in r.values()}
                    | {s["msd_order"] for by in finetune.values() for r in by.values() for s in r.values()})
    payload = {"split": cfg.split, "targets": labels, "msd_order": orders[0] if len(orders) == 1 else orders,
               "direct_transfer": direct, "finetune": finetune}
    write_json(payload, out / "protocol.json")
    if direct:
        (out / "direct_transfer.md").write_text(
            "## Direct transfer (text-to-image, seed 002 Table 3 layout)\n\n" + direct_transfer_table(t2i_direct, labels, orders)
        )
        for target in labels:
            plot_cmc({i: r[target]["cmc"] for i, r in direct.items()}, out / f"cmc-direct-{target}.png")
    if finetune:
        (out / "finetune.md").write_text(
            "## Fine-tuning (text-to-image, seed 002 Table 4 layout; off-diagonal = cross-domain)\n\n"
            + finetune_table(t2i_ft, labels, orders)
        )
    return payload
