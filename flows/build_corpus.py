"""``build-corpus`` flow (seed 002 §3, DESIGN §2/§7): discover images → plan shards deterministically →
one task per shard that is not done (caption every configured kind × model, validate/regenerate, write,
mark done) → manifest + dataset card → run summary artifact.

Wiring only — the work is :class:`caption_gen.captioning.engine.CaptionEngine`:

* **plan** (:func:`plan_task`): ``engine.check_resume`` (the run fingerprint of the done shards) and
  ``engine.plan(markers)`` — the one planner of :mod:`caption_gen.captioning.plan`, shared with
  ``pedes caption``: by content against the done markers (a resumed run redoes exactly the missing
  shards, a folder that gained images gets shards of only the new ones, done shards holding generation
  errors are redone for those jobs); each pending shard's image list is written to a small JSON file in the
  run's work folder (``<out>.flow/plans/``) and tasks receive that *path* — no image lists or rows travel
  through Prefect, and every task returns only a small stats dict.
* **shard** (:func:`caption_shard_task`): idempotent — a done shard returns its marker's stats and
  writes nothing (a redo only while the marker's revision is the planned one); otherwise
  ``engine.caption_shard`` + ``engine.write_shard`` (atomic files, done marker last; the engine counts
  backend calls, errors, timeouts, empty outputs and regenerations into the marker). A shard whose
  generation errors exceed ``caption.retry.max_generation_error_share`` raises (not done). Prefect retries it with exponential backoff. The engine (instructions + model backends)
  is built once per worker process and reused by later shard tasks (:func:`_engine_for`, plus the
  per-process backend cache of ``caption_gen.backends.factory``); the flow closes it at the end.
* **GPU discipline**: with the thread runner a shard holds a process-wide GPU slot while captioning
  (:func:`flows.runners.gpu_slot`); with the Ray runner each shard task requests ``runner.num_gpus``.
  Caption tasks are tagged ``task.tag`` (default ``pedes-gpu``) for a Prefect tag concurrency limit.
* **failures**: every backend call runs under the engine's deadline (``caption.retry.call_timeout_s``,
  settable as ``task.batch_timeout_s``); a call that raises,
  hangs past the deadline or returns the wrong number of results is re-submitted by the engine
  (``retry.batch_retries``), then its captions become rejects (``generation:error`` with the cause);
  empty or invalid texts are regenerated, then rejected with their validation reasons. Counts of failed
  backend calls, timeouts, empty outputs, regenerations and shard-task retries (those of shards that still
  failed included) go into the run summary, with the worker processes that ran shards and how many
  times an engine was loaded (once per worker process and config). A shard task that
  still fails after its retries is listed in the summary (``failed_shards``) and left not done, so the next
  run redoes it, and the flow run then fails (after the summary is written) with an error naming the shards
  (``task.on_shard_failure: reject`` instead writes its images as ``flow:shard_failed`` rejects).
* **one writer per corpus**: the flow process holds the corpus lock (``caption_gen.corpus.lock``) for
  the whole run — a second run on the same output folder refuses to start with a clear message; shard
  tasks write under that lock (``lock=False``) and the flow finalizes.

Shard size: ``caption.shard_size`` (default 256); for a million images use a few thousand per shard, so
the run is a few hundred tasks (Prefect's server struggles around 2k mapped tasks).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from prefect import flow, task
from pydantic import Field

from caption_gen.captioning.config import CaptionRunConfig
from flows.runners import RunnerConfig, gpu_slot, remote_options, task_runner_for
from pedes_core.configuration import ConfigModel, ConfigPath, load_config, save_resolved

FLOW_NAME = "build-corpus"


class ShardTaskPolicy(ConfigModel):
    """How shard tasks are retried, bounded and tagged."""

    #: Prefect retries of a failed shard task (exponential backoff from ``retry_delay_s``).
    retries: int = Field(2, ge=0)
    retry_delay_s: float = Field(10.0, ge=0)
    retry_jitter_factor: float | None = Field(0.5, ge=0)
    #: Prefect timeout of one shard task (None = none).
    timeout_s: float | None = Field(None, gt=0)
    #: deadline of one backend ``generate`` call: when given, sets ``caption.retry.call_timeout_s`` (the
    #: engine's one deadline; None = keep that value).
    batch_timeout_s: float | None = Field(None, gt=0)
    #: tag of caption tasks (for ``prefect concurrency-limit create pedes-gpu 1``).
    tag: str = "pedes-gpu"
    #: a shard that still fails after its retries: ``leave`` it not done (the next run redoes it) or
    #: ``reject`` its images (``flow:shard_failed``) and mark it done.
    on_shard_failure: Literal["leave", "reject"] = "leave"


class BuildCorpusConfig(ConfigModel):
    """``configs/flows/build_corpus.yaml``: the captioning run (``caption:``, as ``pedes caption``) plus
    orchestration settings."""

    caption: CaptionRunConfig
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    task: ShardTaskPolicy = Field(default_factory=ShardTaskPolicy)
    #: plans, resolved config and run summaries (default: ``<out>.flow`` next to the corpus; the corpus
    #: folder itself holds only the corpus).
    work_dir: ConfigPath | None = None

    @property
    def work(self) -> Path:
        out = Path(self.caption.out).resolve()
        return Path(self.work_dir).resolve() if self.work_dir is not None else out.parent / f"{out.name}.flow"


def load_build_corpus_config(path: str | Path, overrides: list[str] | None = None) -> BuildCorpusConfig:
    """Load the flow config with the one loader (:func:`pedes_core.configuration.load_config`): relative
    paths in the file — ``caption.images`` / ``caption.image_root`` included (``SourcePath``) — resolve
    against the file's directory, ``--set`` values against the current directory."""
    cfg = load_config(BuildCorpusConfig, path, overrides or [])
    if cfg.task.batch_timeout_s is not None:
        cfg.caption.retry = cfg.caption.retry.model_copy(update={"call_timeout_s": cfg.task.batch_timeout_s})
    cfg.caption.progress = False  # Prefect logs progress; no terminal bars inside tasks
    return cfg


# --------------------------------------------------------------------------------- engine per process
_INSTRUCTIONS: dict[str, Any] = {}
_INSTRUCTIONS_LOCK = threading.Lock()


def _config_key(cap: CaptionRunConfig) -> str:
    return hashlib.sha256(cap.model_dump_json().encode()).hexdigest()


def _engine_for(cap: CaptionRunConfig, counters: Counter) -> Any:
    """A CaptionEngine for one shard, reusing this process's loaded instructions and model backends
    (the engine itself puts each backend call under ``caption.retry.call_timeout_s`` and counts it)."""
    from caption_gen.backends.factory import build_backend
    from caption_gen.captioning.engine import CaptionEngine

    key = _config_key(cap)
    with _INSTRUCTIONS_LOCK:
        if key not in _INSTRUCTIONS:
            counters["engine_loads"] += 1  # first shard of this config in this worker process
            probe = CaptionEngine(cap)
            probe.prepare()  # loads instructions, checks kinds, builds (and caches) every backend
            _INSTRUCTIONS[key] = probe.instructions
    engine = CaptionEngine(cap)
    engine.instructions = _INSTRUCTIONS[key]
    engine.backends = {s.label: build_backend(s) for s in cap.models}
    return engine


def release_engines() -> None:
    """Close every model backend this process loaded (end of flow)."""
    from caption_gen.backends.factory import close_all

    with _INSTRUCTIONS_LOCK:
        _INSTRUCTIONS.clear()
    close_all()


# ----------------------------------------------------------------------------------------- plan files
def _write_shard_plan(path: Path, shard: Any, revision: int | None) -> None:
    doc = {"index": shard.index,
           "images": [[ref.path, ref.uri, sha] for ref, sha in shard.images],
           "duplicates": [[d.ref.path, d.ref.uri, d.reason, d.detail, d.sha256] for d in shard.duplicates],
           "jobs": ({p: [list(j) for j in jobs] for p, jobs in shard.jobs.items()} if shard.jobs is not None else None),
           "revision": revision}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    tmp.replace(path)


def read_shard_plan(path: str | Path) -> Any:
    """The :class:`~caption_gen.captioning.plan.ShardPlan` stored by :func:`plan_task`."""
    return _read_shard_plan(path)[0]


def _read_shard_plan(path: str | Path) -> tuple[Any, int | None]:
    from caption_gen.captioning.plan import ShardPlan
    from caption_gen.images.decode import ImageRejected
    from caption_gen.images.discovery import ImageRef

    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    images = tuple((ImageRef(path=p, uri=u), sha) for p, u, sha in doc["images"])
    dups = tuple(ImageRejected(reason, detail, ref=ImageRef(path=p, uri=u), sha256=sha)
                 for p, u, reason, detail, sha in doc["duplicates"])
    jobs = doc.get("jobs")
    if jobs is not None:
        jobs = {p: tuple(tuple(j) for j in js) for p, js in jobs.items()}
    return ShardPlan(index=int(doc["index"]), images=images, duplicates=dups, jobs=jobs), doc.get("revision")


@task(name="plan-shards", retries=1, retry_delay_seconds=5, persist_result=False)
def plan_task(config: str, overrides: list[str]) -> dict[str, Any]:
    """Plan with the engine's planner (by content, against the done markers; the same as ``pedes caption``)
    and write one plan file per shard to run."""
    from caption_gen.captioning.engine import CaptionEngine
    from caption_gen.corpus.manifest import read_markers
    from caption_gen.corpus.writer import CorpusWriter
    from pedes_core.errors import ConfigError

    cfg = load_build_corpus_config(config, overrides)
    out = CorpusWriter(cfg.caption.out, lock=False).root
    markers = read_markers(out)
    engine = CaptionEngine(cfg.caption)
    engine.load_instructions()
    engine.check_resume(markers)
    plan = engine.plan(markers)
    if plan.total_images == 0:
        raise ConfigError(f"caption.images: no images found in {cfg.caption.images}")
    plans = cfg.work / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    for old in plans.glob("shard-*.json"):
        old.unlink()
    pending: dict[int, str] = {}
    for shard in plan.shards:
        path = plans / f"shard-{shard.index:05d}.json"
        revision = int(markers[shard.index].get("revision", 0)) if shard.redo else None
        _write_shard_plan(path, shard, revision)
        pending[shard.index] = str(path)
    return {"images": plan.total_images, "shards": len(set(markers) | set(pending)), "image_root": plan.image_root,
            "done": sorted(markers), "redo": sorted(s.index for s in plan.shards if s.redo), "pending": pending}


def worker_id() -> str:
    """``host:pid`` of the process running a task (the flow process, or a Ray worker)."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def _run_count() -> int:
    try:
        from prefect.runtime import task_run

        return int(task_run.run_count or 1)
    except Exception:  # pragma: no cover - outside a task run
        return 1


@task(name="caption-shard", persist_result=False)
def caption_shard_task(config: str, overrides: list[str], plan_file: str, image_root: str | None) -> dict[str, Any]:
    """Caption one shard and write it (idempotent: a done shard is not redone). Returns small stats."""
    from caption_gen.corpus.writer import CorpusWriter

    cfg = load_build_corpus_config(config, overrides)
    shard, revision = _read_shard_plan(plan_file)
    attempts = _run_count()
    writer = CorpusWriter(cfg.caption.out, image_root=image_root, lock=False)  # the flow holds the lock
    if writer.is_done(shard.index) and (not shard.redo or writer.shard_stats(shard.index).get("revision", 0) != revision):
        return {"shard": shard.index, "skipped": True, "task_attempts": attempts, **writer.shard_stats(shard.index)}
    counters: Counter = Counter()
    t0 = time.perf_counter()
    with gpu_slot(cfg.runner.gpu_slots):
        engine = _engine_for(cfg.caption, counters)
        result = engine.caption_shard(shard)
    stats = engine.write_shard(writer, shard, result, extra={**{k: int(v) for k, v in counters.items()},
                                                             "task_attempts": attempts, "worker": worker_id()})
    return {"shard": shard.index, "skipped": False, "task_attempts": attempts, "worker": stats["extra"]["worker"],
            "seconds": round(time.perf_counter() - t0, 3), **_small(stats)}


@task(name="reject-failed-shard", persist_result=False)
def reject_shard_task(config: str, overrides: list[str], plan_file: str, image_root: str | None,
                      error: str) -> dict[str, Any]:
    """``on_shard_failure: reject``: write every image of a shard that kept failing as a reject."""
    from caption_gen.corpus.rows import reject_row
    from caption_gen.corpus.schema import image_id_from_sha256
    from caption_gen.corpus.writer import CorpusWriter

    cfg = load_build_corpus_config(config, overrides)
    shard = read_shard_plan(plan_file)
    if shard.redo:  # a redo that kept failing: the done shard stays as it was (its rejects are retried later)
        return {"shard": shard.index, "skipped": True, "shard_failed": error[:500]}
    rejects = [d.to_reject_row() for d in shard.duplicates]
    rejects += [reject_row(image_id=image_id_from_sha256(sha) if sha else None, image_path=ref.path,
                           image_sha256=sha or None, stage="generation", reason="flow:shard_failed",
                           reasons=["flow:shard_failed"], detail=error[:2000])
                for ref, sha in shard.images]
    writer = CorpusWriter(cfg.caption.out, image_root=image_root, lock=False)
    return {"shard": shard.index, **_small(writer.write_shard(shard.index, [], rejects,
                                                              extra_stats={"shard_failed": error[:500]}))}


def _small(stats: dict[str, Any]) -> dict[str, Any]:
    """Drop file hashes and other bulky marker fields from what goes back through Prefect."""
    return {k: v for k, v in stats.items() if k not in ("files", "sha256")}


# ------------------------------------------------------------------------------------------ summary
def _acceptance(root: Path, index: int, stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    """``by_kind_model`` of a marker (markers written before it existed: counted from that shard's files)."""
    if "by_kind_model" in stats:
        return stats["by_kind_model"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    from caption_gen.corpus.schema import CAPTION_SCHEMA, REJECT_SCHEMA
    from caption_gen.corpus.writer import _by_kind_model

    caps = pq.read_table(root / stats["captions_file"]) if stats.get("captions_file") else CAPTION_SCHEMA.empty_table()
    rej = pq.read_table(root / stats["rejects_file"]) if stats.get("rejects_file") else REJECT_SCHEMA.empty_table()
    return _by_kind_model(caps, rej) if isinstance(caps, pa.Table) else {}


def summarize(out: str | Path, results: list[dict[str, Any]], failed: dict[int, str], plan: dict[str, Any],
              wall_s: float, name: str, failed_retries: int = 0) -> dict[str, Any]:
    """Run summary from the done markers (per-shard stats counted by the engine and the writer: acceptance
    by kind × model, rejects by reason, backend counters) and the task results; no caption row is re-read.
    ``failed_retries``: Prefect retries spent on shard tasks that still failed (not in ``results``)."""
    from caption_gen.corpus.manifest import read_markers, totals_from_markers

    root = Path(out).resolve()
    markers = read_markers(root)
    totals = totals_from_markers(markers)
    acceptance: dict[str, dict[str, int]] = {}
    for index, stats in sorted(markers.items()):
        for key, e in _acceptance(root, index, stats).items():
            a = acceptance.setdefault(key, {"rows": 0, "accepted": 0})
            a["rows"] += int(e.get("rows", 0)) + int(e.get("rejects", 0))
            a["accepted"] += int(e.get("accepted", 0))
    ran = [r for r in results if not r.get("skipped")]
    images_run = sum(int((r.get("extra") or {}).get("images", r.get("images", 0)) or 0) for r in ran)
    counters: Counter = Counter()
    for r in ran:
        extra = r.get("extra", {}) or {}  # the engine's counters, stored in the shard's done marker
        for k in ("backend_calls", "backend_errors", "backend_timeouts", "empty_outputs", "engine_loads"):
            counters[k] += int(extra.get(k, 0))
        counters["regenerated"] += sum(int(v) for a, v in (extra.get("accepted_by_attempt") or {}).items() if a != "1")
    accepted = int(totals["validation"].get("passed", 0))
    total = sum(e["rows"] for e in acceptance.values())
    return {
        "name": name, "out": str(root), "images": plan["images"], "shards_total": plan["shards"],
        "shards_run": len(ran), "shards_skipped": len(set(plan["done"]) - set(plan.get("redo", []))),
        "shard_indices_run": sorted(r["shard"] for r in ran), "failed_shards": sorted(failed),
        "redone_shards": sorted(r["shard"] for r in ran if r["shard"] in set(plan.get("redo", []))),
        "failures": {str(k): v[:300] for k, v in failed.items()},
        "rows": int(totals["rows"]), "accepted": accepted,
        "rejects": int(totals["rejects"]), "acceptance_rate": accepted / total if total else 0.0,
        "acceptance": dict(sorted(acceptance.items())),
        "rejects_by_reason": dict(totals["rejects_by_reason"]),
        "task_retries": sum(max(0, int(r.get("task_attempts", 1)) - 1) for r in results) + failed_retries,
        "backend_retries": counters["backend_errors"], **{k: counters[k] for k in
                                                          ("backend_calls", "backend_timeouts", "empty_outputs",
                                                           "regenerated", "engine_loads")},
        "workers": sorted({str(r["worker"]) for r in ran if r.get("worker")}),
        "wall_s": round(wall_s, 3), "images_per_s": images_run / wall_s if wall_s > 0 else 0.0,
    }


# --------------------------------------------------------------------------------------------- flow
def check_not_locked(cfg: BuildCorpusConfig) -> None:
    """Refuse early (before Prefect starts) when another writer holds the corpus lock
    (:class:`~caption_gen.corpus.errors.CorpusLockedError` naming the holder's pid). The flow itself
    takes the lock for the whole run, so this is only a friendlier first check."""
    from caption_gen.corpus.lock import CorpusLock

    out = Path(cfg.caption.out)
    if out.is_dir():
        with CorpusLock(out):
            pass


@flow(name=FLOW_NAME, log_prints=True, persist_result=False)
def build_corpus_flow(config: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """Caption the configured images into a corpus (module docstring); returns the run summary."""
    from caption_gen.captioning.engine import CaptionEngine
    from caption_gen.corpus.lock import CorpusLock
    from caption_gen.corpus.writer import CorpusWriter
    from flows.artifacts import corpus_summary_markdown, publish_markdown

    ov = list(overrides or [])
    cfg = load_build_corpus_config(config, ov)
    cap = cfg.caption
    out = Path(cap.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    lock = CorpusLock(out)
    lock.acquire()  # a second run on the same corpus refuses here (CorpusLockedError names the holder)
    try:
        work = cfg.work
        save_resolved(cfg, work)
        plan = plan_task(config, ov)
        shard_task = caption_shard_task.with_options(
            retries=cfg.task.retries,
            retry_delay_seconds=[cfg.task.retry_delay_s * 2**i for i in range(cfg.task.retries)] or 0,
            retry_jitter_factor=cfg.task.retry_jitter_factor, timeout_seconds=cfg.task.timeout_s,
            tags=[cfg.task.tag])
        futures = {}
        results: list[dict[str, Any]] = []
        failed: dict[int, str] = {}
        with task_runner_for(cfg.runner) as runner:
            with remote_options(cfg.runner):
                for index, plan_file in sorted(plan["pending"].items(), key=lambda kv: int(kv[0])):
                    futures[int(index)] = runner.submit(shard_task, parameters={
                        "config": config, "overrides": ov, "plan_file": plan_file, "image_root": plan["image_root"]})
            for index, fut in futures.items():
                fut.wait()
                state = fut.state
                if state.is_completed():
                    results.append(fut.result())
                    continue
                try:
                    fut.result(raise_on_failure=True)
                    error = f"shard task ended in state {state.type.value}"
                except BaseException as exc:  # noqa: BLE001 - summarized, not raised
                    error = f"{type(exc).__name__}: {exc}"
                failed[index] = error
        if cfg.task.on_shard_failure == "reject":
            for index, error in failed.items():
                results.append(reject_shard_task(config, ov, plan["pending"][index], plan["image_root"], error))
        with CorpusWriter(out, image_root=plan["image_root"], lock=False) as writer:
            manifest = CaptionEngine(cap).finalize(writer, image_root=plan["image_root"], images_found=plan["images"])
        summary = summarize(out, results, failed, plan, time.perf_counter() - t0, cap.corpus_name,
                            failed_retries=len(failed) * cfg.task.retries)
        summary["manifest"] = str(out / "corpus.json")
        summary["card"] = str(out / "README.md")
        summary["totals"] = manifest.get("totals")
        (work / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        publish_markdown(corpus_summary_markdown(summary), key="build-corpus-summary",
                         description=f"build-corpus run summary ({cap.corpus_name})", out=work / "summary.md")
        left = sorted(i for i in failed if cfg.task.on_shard_failure == "leave" or i in plan.get("redo", []))
        if left:  # not finished work: the flow run fails (non-zero exit), the summary names every shard
            from caption_gen.corpus.errors import CorpusError

            raise CorpusError(f"build-corpus {cap.corpus_name}: shard(s) {left} failed and are not done (a rerun "
                              f"redoes them): {failed[left[0]][:300]}; summary: {work / 'summary.json'}")
        return summary
    finally:
        release_engines()
        lock.release()
