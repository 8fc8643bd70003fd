"""The captioning engine: per shard decode → requests → batched generation → validation → retry → write.

DESIGN §2–§3; ``pedes caption`` and the ``build-corpus`` flow both run it (the flow only wires its shards
into tasks). For every shard of the plan (:mod:`caption_gen.captioning.plan`, by content against the done
markers) that is not done yet:

1. decode each image (:func:`caption_gen.images.decode.decode_image`); failures become reject rows
   (``stage="decode"``) and the run goes on; duplicate copies are rejected by the plan;
2. for each model spec × kind, render the instruction once per image
   (:meth:`InstructionSet.render` — the TDE template / style is drawn from a seeded RNG, so reruns
   draw the same one) and build one :class:`GenerationRequest` per (image, kind, model);
3. generate in batches of ``batch_size``, each backend call under one deadline (``retry.call_timeout_s``,
   :class:`DeadlineBackend`, which also counts calls, errors, timeouts and empty outputs into the shard's
   stats); a batch whose call raises, hangs past the deadline or returns the wrong number of results is
   re-submitted up to ``retry.batch_retries`` times, then each of its captions is rejected
   (``stage="generation"``, ``reason="generation:error"``, the cause in ``detail``);
   when more than ``retry.max_generation_error_share`` of a shard's jobs end as generation errors the
   shard is *failed* (:class:`ShardFailedError`): nothing of it is written, the run stops after
   finalizing what is done, and a rerun redoes it;
4. validate each text (:func:`caption_gen.validation.validate.validate_caption`); a rejected caption
   is regenerated with seed ``base + attempt - 1`` and temperature ``+ retry.temperature_bump`` per
   extra attempt (capped) up to ``retry.max_attempts`` attempts, then written to ``rejects/`` with the
   reasons of *all* attempts (``reason`` = the last attempt's first reason);
5. write the shard's accepted rows and rejects with :meth:`CorpusWriter.write_shard` (atomic, done
   marker last). After the last shard the manifest is (re)written with :meth:`CorpusWriter.finalize`.

Run fingerprint (:func:`run_fingerprint`): kinds, models, seed, styling and the sha256 of the instruction,
template and style banks, plus the shard size, is stored in every done marker and in the manifest
(``fingerprint``). Resuming a corpus made with other kinds/models/seed/banks is refused before any work
(:func:`check_fingerprint`, one line naming what differs); another shard size is fine (planning is by
content, nothing is lost).

Per-caption base seed: the first 8 bytes of ``sha256(f"{seed}:{image_id}:{kind}:{model}")`` as an
int below 2**31 — stable across reruns, machines and shard sizes.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caption_gen.backends.base import CaptionBackend, GenerationRequest, GenerationResult
from caption_gen.backends.spec import ModelSpec
from caption_gen.captioning.config import CaptionRunConfig
from caption_gen.captioning.plan import RunPlan, ShardPlan, plan_run
from caption_gen.corpus.errors import CorpusError
from caption_gen.corpus.rows import caption_row, reject_row
from caption_gen.corpus.writer import CorpusWriter
from caption_gen.images.decode import DecodedImage, ImageRejected, decode_image
from caption_gen.instructions.bank import Instruction, InstructionSet
from caption_gen.validation.validate import validate_caption
from pedes_core.errors import ConfigError

_SEED_MODULUS = 2**31


def caption_seed(seed: int, image_id: str, kind: str, model: str) -> int:
    """Base seed of one (image, kind, model) caption (attempt k uses base + k - 1)."""
    digest = hashlib.sha256(f"{seed}:{image_id}:{kind}:{model}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_MODULUS


class ShardFailedError(CorpusError):
    """A shard whose generation errors exceed ``retry.max_generation_error_share``: not written, not done."""

    def __init__(self, message: str, *, shard: int):
        super().__init__(message)
        self.shard = shard


#: counters a :class:`DeadlineBackend` adds to the shard stats.
CALL_COUNTERS: tuple[str, ...] = ("backend_calls", "backend_errors", "backend_timeouts", "empty_outputs")


class DeadlineBackend:
    """A backend seen through the per-call deadline, counting calls, failed calls, timeouts and empty texts.

    The call runs in a helper thread; past ``timeout_s`` the caller gets ``TimeoutError`` (the engine then
    re-submits or rejects the batch) while the stuck call is abandoned in its daemon thread."""

    def __init__(self, inner: CaptionBackend, timeout_s: float | None, counters: Counter | None = None):
        self.inner = inner
        self.name = inner.name
        self.timeout_s = timeout_s
        self.counters: Counter = counters if counters is not None else Counter()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.counters["backend_calls"] += 1
        try:
            if self.timeout_s is None:
                results = self.inner.generate(requests)
            else:
                box: dict[str, Any] = {}

                def call() -> None:
                    try:
                        box["results"] = self.inner.generate(requests)
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        box["error"] = exc

                worker = threading.Thread(target=call, name="pedes-backend-call", daemon=True)
                worker.start()
                worker.join(self.timeout_s)
                if worker.is_alive():
                    self.counters["backend_timeouts"] += 1
                    raise TimeoutError(f"backend {self.name!r} did not answer within {self.timeout_s:g} s")
                if "error" in box:
                    raise box["error"]
                results = box["results"]
        except Exception:
            self.counters["backend_errors"] += 1
            raise
        self.counters["empty_outputs"] += sum(1 for r in results if not (getattr(r, "text", "") or "").strip())
        return results

    def close(self) -> None:
        self.inner.close()


def _bank_sha(path: Any) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except (OSError, TypeError):
        return None


#: fingerprint fields a resume must match (``shard_size`` may differ: planning is by content).
FINGERPRINT_MUST_MATCH: tuple[str, ...] = ("kinds", "models", "seed", "styled", "banks")


def run_fingerprint(cfg: CaptionRunConfig, instructions: InstructionSet | None) -> dict[str, Any]:
    """What decides which rows a run produces (module docstring)."""
    banks = {}
    if instructions is not None:
        banks = {name: _bank_sha(path) for name, path in sorted(instructions.sources.items())}
    return {"shard_size": cfg.shard_size, "kinds": list(cfg.kinds), "models": [m.label for m in cfg.models],
            "seed": cfg.seed, "styled": cfg.styled, "banks": banks}


def check_fingerprint(out: Any, current: dict[str, Any], markers: dict[int, dict[str, Any]]) -> None:
    """Refuse (ConfigError, exit 2) to resume a corpus whose done shards were made with other settings."""
    for index, stats in sorted(markers.items()):
        old = (stats.get("extra") or {}).get("fingerprint")
        if not old:
            continue
        diffs = [f"{k} {old.get(k)!r} -> {current.get(k)!r}" for k in FINGERPRINT_MUST_MATCH
                 if k in old and old.get(k) != current.get(k)]
        if diffs:
            raise ConfigError(
                f"corpus {out}: done shard {index} was captioned with other settings ({'; '.join(diffs)}); "
                "resume with the same settings, or write to a new --out")


@dataclass
class _Job:
    """One (image, kind, model) caption being generated."""

    image: DecodedImage
    kind: str
    model: str
    instruction: Instruction
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    base_seed: int
    attempt: int = 0
    history: list[tuple[int, list[str]]] = field(default_factory=list)
    last_text: str | None = None

    @property
    def key(self) -> str:
        return f"{self.image.image_id}|{self.kind}|{self.model}"


@dataclass
class ShardResult:
    index: int
    rows: list[dict[str, Any]]
    rejects: list[dict[str, Any]]
    stats: dict[str, Any]


@dataclass
class RunSummary:
    """What a run did (``shards_skipped`` were already done before it started)."""

    corpus: str
    shards: int
    shards_written: int
    shards_skipped: int
    images: int
    accepted: int
    rejected: int
    seconds: float
    manifest: dict[str, Any] | None = None

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


#: progress callback: (images, accepted, rejected) done since the last call.
ProgressFn = Callable[[int, int, int], None]


class CaptionEngine:
    """Runs a :class:`CaptionRunConfig`. ``backends`` (label → backend) replaces the factory (tests)."""

    def __init__(self, cfg: CaptionRunConfig, *, backends: dict[str, CaptionBackend] | None = None,
                 progress: ProgressFn | None = None):
        self.cfg = cfg
        self._given = dict(backends or {})
        self.backends: dict[str, CaptionBackend] = {}
        self.instructions: InstructionSet | None = None
        self.progress = progress or (lambda images, accepted, rejected: None)

    # ----------------------------------------------------------------------------------- setup
    def prepare(self) -> None:
        """Load instructions/templates, check kinds and build every backend — all before any generation.

        Any problem (unknown kind, bad template, missing model folder) raises :class:`ConfigError`."""
        cfg = self.cfg
        self.load_instructions()
        from caption_gen.backends.factory import build_backend

        for spec in cfg.models:
            self.backends[spec.label] = self._given.get(spec.label) or build_backend(spec)

    def load_instructions(self) -> None:
        """Load and check the instruction/template/style banks and the kinds (no backend is built)."""
        cfg = self.cfg
        self.instructions = InstructionSet.load(cfg.instructions, cfg.templates, cfg.style_bank)
        self.instructions.check_kinds(cfg.kinds, styled=cfg.styled)
        for kind in cfg.kinds:
            cfg.validation.for_kind(kind)

    # ------------------------------------------------------------------------------ one shard
    def _jobs(self, images: Sequence[DecodedImage], spec: ModelSpec,
              only: dict[str, tuple[tuple[str, str], ...]] | None = None) -> list[_Job]:
        assert self.instructions is not None
        s = self.cfg.sampling
        jobs = []
        for kind in self.cfg.kinds:
            for img in images:
                if only is not None and (kind, spec.label) not in only.get(img.ref.path, ()):
                    continue
                instr = self.instructions.render(kind, image_id=img.image_id, seed=self.cfg.seed, styled=self.cfg.styled,
                                                  model=spec.label)
                d = instr.sampling
                jobs.append(_Job(
                    image=img, kind=kind, model=spec.label, instruction=instr,
                    temperature=s.temperature if s.temperature is not None else d.get("temperature"),
                    top_p=s.top_p if s.top_p is not None else d.get("top_p"),
                    max_tokens=s.max_tokens if s.max_tokens is not None else d.get("max_tokens"),
                    base_seed=caption_seed(self.cfg.seed, img.image_id, kind, spec.label),
                ))
        return jobs

    def _request(self, job: _Job) -> GenerationRequest:
        r = self.cfg.retry
        temperature = job.temperature
        if temperature is not None and job.attempt > 1 and r.temperature_bump > 0:
            temperature = min(temperature + r.temperature_bump * (job.attempt - 1), max(r.max_temperature, temperature))
        return GenerationRequest(
            request_id=f"{job.key}|a{job.attempt}", messages=job.instruction.messages(), image=job.image.image,
            temperature=temperature, top_p=job.top_p, max_tokens=job.max_tokens,
            seed=job.base_seed + job.attempt - 1, metadata={"kind": job.kind, "image_id": job.image.image_id},
        )

    def _generate(self, backend: CaptionBackend, requests: list[GenerationRequest]) -> list[GenerationResult] | str:
        """Results, or the error text after ``batch_retries`` failed re-submissions."""
        error = ""
        for _ in range(self.cfg.retry.batch_retries + 1):
            try:
                results = backend.generate(requests)
                if len(results) != len(requests):
                    raise RuntimeError(f"backend returned {len(results)} results for {len(requests)} requests")
                return results
            except Exception as exc:  # noqa: BLE001 - any backend failure: retry, then reject the batch
                error = f"{type(exc).__name__}: {exc}"
        return error

    def _row(self, job: _Job, req: GenerationRequest, res: GenerationResult, validation: dict[str, Any]) -> dict:
        img, ins = job.image, job.instruction
        return caption_row(
            image_id=img.image_id, image_path=img.ref.path, image_sha256=img.sha256, width=img.width,
            height=img.height, kind=job.kind, model=job.model, template_id=ins.template_id, style_id=ins.style_id,
            instruction_id=ins.instruction_id, instruction_sha256=ins.sha256, caption=res.text.strip(),
            num_tokens=res.num_tokens, finish_reason=res.finish_reason,
            sampling={"temperature": req.temperature, "top_p": req.top_p, "max_tokens": req.max_tokens,
                      "seed": req.seed},
            validation=validation, attempt=job.attempt,
        )

    def _reject(self, job: _Job, stage: str, reason: str, reasons: list[str], detail: str) -> dict:
        img, ins = job.image, job.instruction
        return reject_row(
            image_id=img.image_id, image_path=img.ref.path, image_sha256=img.sha256, stage=stage, kind=job.kind,
            model=job.model, template_id=ins.template_id, style_id=ins.style_id, reason=reason, reasons=reasons,
            detail=detail, caption=job.last_text, attempt=job.attempt,
        )

    def _caption_model(self, spec: ModelSpec, images: Sequence[DecodedImage],
                       only: dict[str, tuple[tuple[str, str], ...]] | None = None,
                       counters: Counter | None = None) -> tuple[list[dict], list[dict], Counter]:
        backend = DeadlineBackend(self.backends[spec.label], self.cfg.retry.call_timeout_s, counters)
        rows: list[dict] = []
        rejects: list[dict] = []
        attempts: Counter = Counter()
        pending = self._jobs(images, spec, only)
        bs = self.cfg.batch_size
        for attempt in range(1, self.cfg.retry.max_attempts + 1):
            if not pending:
                break
            retry_next: list[_Job] = []
            for start in range(0, len(pending), bs):
                batch = pending[start : start + bs]
                for job in batch:
                    job.attempt = attempt
                requests = [self._request(j) for j in batch]
                results = self._generate(backend, requests)
                if isinstance(results, str):
                    for job in batch:
                        rejects.append(self._reject(job, "generation", "generation:error", ["generation:error"],
                                                    f"backend {spec.label!r} failed on this batch: {results}"))
                    continue
                for job, req, res in zip(batch, requests, results, strict=True):
                    if res.error:
                        job.history.append((attempt, ["generation:error"]))
                        job.last_text = None
                        last_detail = res.error
                    else:
                        vr = validate_caption(res.text, job.kind, self.cfg.validation, finish_reason=res.finish_reason)
                        job.last_text = res.text
                        if vr.passed:
                            rows.append(self._row(job, req, res, vr.as_row()))
                            attempts[attempt] += 1
                            continue
                        job.history.append((attempt, [f"validation:{r}" for r in vr.reasons]))
                        last_detail = ""
                    if attempt < self.cfg.retry.max_attempts:
                        retry_next.append(job)
                    else:
                        rejects.append(self._final_reject(job, last_detail))
            pending = retry_next
        return rows, rejects, attempts

    def _final_reject(self, job: _Job, error_detail: str) -> dict:
        all_reasons: list[str] = []
        for _, reasons in job.history:
            for r in reasons:
                if r not in all_reasons:
                    all_reasons.append(r)
        last = job.history[-1][1] if job.history else ["validation:unknown"]
        stage = "generation" if last == ["generation:error"] else "validation"
        detail = "; ".join(f"attempt {a}: {', '.join(rs)}" for a, rs in job.history)
        if error_detail:
            detail += f" ({error_detail})"
        return self._reject(job, stage, last[0], all_reasons, detail)

    def caption_shard(self, shard: ShardPlan) -> ShardResult:
        """Decode, caption and validate one shard (nothing is written).

        Raises :class:`ShardFailedError` when the share of generation errors exceeds
        ``retry.max_generation_error_share``."""
        t0 = time.perf_counter()
        rejects: list[dict] = [d.to_reject_row() for d in shard.duplicates]
        images: list[DecodedImage] = []
        for ref, sha in shard.images:
            try:
                images.append(decode_image(ref, max_pixels=self.cfg.max_image_pixels))
            except ImageRejected as rej:
                if not shard.redo:  # a redone image decoded before; its earlier rows stay
                    rejects.append(rej.to_reject_row(ref, rej.sha256 or sha or None))
        n_bad = len(rejects)
        if not shard.redo:
            self.progress(n_bad, 0, n_bad)
        rows: list[dict] = []
        attempts: Counter = Counter()
        counters: Counter = Counter({k: 0 for k in CALL_COUNTERS})
        t_gen = time.perf_counter()
        for spec in self.cfg.models:
            r, j, a = self._caption_model(spec, images, shard.jobs, counters)
            rows.extend(r)
            rejects.extend(j)
            attempts.update(a)
        n_jobs = len(rows) + len(rejects) - n_bad
        n_errors = sum(1 for r in rejects if r.get("reason") == "generation:error")
        share = self.cfg.retry.max_generation_error_share
        if n_jobs and n_errors / n_jobs > share:
            first = next(r.get("detail") for r in rejects if r.get("reason") == "generation:error")
            raise ShardFailedError(
                f"shard {shard.index} failed: {n_errors} of {n_jobs} captions hit backend errors "
                f"({100 * n_errors / n_jobs:.0f}% > retry.max_generation_error_share {share:g}), e.g. {first}; "
                "the shard is not done — rerun when the backend is back", shard=shard.index)
        self.progress(0 if shard.redo else len(images), len(rows), len(rejects) - n_bad)
        stats = {
            "images": shard.size, "decoded": len(images), "seconds": round(time.perf_counter() - t0, 3),
            "generation_seconds": round(time.perf_counter() - t_gen, 3),
            "accepted_by_attempt": {str(k): v for k, v in sorted(attempts.items())},
            "regenerated": sum(v for k, v in attempts.items() if k > 1),
            "generation_errors": n_errors, **{k: int(v) for k, v in counters.items()},
            "fingerprint": run_fingerprint(self.cfg, self.instructions),
        }
        if shard.redo:
            stats["redo_jobs"] = n_jobs
        return ShardResult(shard.index, rows, rejects, stats)

    def write_shard(self, writer: CorpusWriter, shard: ShardPlan, result: ShardResult,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write a captioned shard (a redo replaces the done shard, see ``CorpusWriter.write_shard``)."""
        return writer.write_shard(shard.index, result.rows, result.rejects, extra_stats={**result.stats, **(extra or {})},
                                  redo=shard.jobs)

    # ------------------------------------------------------------------------------- the run
    def plan(self, markers: dict[int, dict[str, Any]] | None = None) -> RunPlan:
        """The shards still to run against the done ``markers`` of ``cfg.out`` (:mod:`~caption_gen.captioning.plan`)."""
        cfg = self.cfg
        return plan_run(cfg.images, shard_size=cfg.shard_size, image_root=cfg.image_root, root=cfg.out,
                        markers=markers, jobs=[(k, m.label) for m in cfg.models for k in cfg.kinds])

    def check_resume(self, markers: dict[int, dict[str, Any]]) -> None:
        """Refuse to resume a corpus made with other settings (:func:`check_fingerprint`)."""
        check_fingerprint(self.cfg.out, run_fingerprint(self.cfg, self.instructions), markers)

    def run(self, plan: RunPlan | None = None, *, on_plan: Callable[[RunPlan, set[int]], None] | None = None,
            on_locked: Callable[[], None] | None = None) -> RunSummary:
        """Caption every shard that is not done yet, then finalize the manifest.

        ``on_locked`` runs once the corpus lock is held, before anything is written (e.g. saving the
        resolved config: a run refused by the lock must not overwrite the running run's files)."""
        from caption_gen.corpus.manifest import read_markers

        t0 = time.perf_counter()
        cfg = self.cfg
        if self.instructions is None:
            self.prepare()
        accepted = rejected = written = skipped = images = 0
        failure: ShardFailedError | None = None
        fresh = not Path(cfg.out).exists()
        with CorpusWriter(cfg.out, image_root=cfg.image_root) as writer:
            markers = read_markers(writer.root)
            self.check_resume(markers)
            plan = plan or self.plan(markers)
            if plan.total_images == 0:
                if fresh:  # leave no empty corpus folder behind for a source without images
                    shutil.rmtree(writer.root, ignore_errors=True)
                raise ConfigError(f"images: no images found in {cfg.images}")
            if writer.image_root is None:
                writer.image_root = plan.image_root
            if on_locked is not None:
                on_locked()
            done = set(markers)
            skipped = len(done)
            if on_plan is not None:
                on_plan(plan, done)
            for shard in plan.shards:
                if shard.index in done and not shard.redo:
                    continue
                try:
                    result = self.caption_shard(shard)
                except ShardFailedError as exc:
                    failure = exc  # stop here: an outage would fail every later shard the same way
                    break
                self.write_shard(writer, shard, result)
                written += 1
                images += 0 if shard.redo else shard.size
                accepted += len(result.rows)
                rejected += len(result.rejects)
            manifest = self.finalize(writer, image_root=plan.image_root, images_found=plan.total_images)
        if failure is not None:
            raise failure
        return RunSummary(str(cfg.out), len(done | {s.index for s in plan.shards}), written, skipped, images,
                          accepted, rejected, time.perf_counter() - t0, manifest)

    def finalize(self, writer: CorpusWriter, *, image_root: str | None, images_found: int) -> dict[str, Any]:
        """Write the manifest (config, models, bank hashes, run fingerprint) and card over the done shards."""
        cfg = self.cfg
        if self.instructions is None:
            self.load_instructions()
        return writer.finalize(
            name=cfg.corpus_name, config=redacted_config(cfg), models=[m.label for m in cfg.models],
            banks=self._banks(), description=cfg.description,
            sources=[{"images": cfg.images, "image_root": image_root, "images_found": images_found}],
            fingerprint=run_fingerprint(cfg, self.instructions),
        )

    def _banks(self) -> dict[str, str]:
        assert self.instructions is not None
        out = {}
        for name, path in self.instructions.sources.items():
            try:
                with open(path, "rb") as fh:
                    out[name] = f"{path} sha256:{hashlib.sha256(fh.read()).hexdigest()}"
            except OSError:
                out[name] = str(path)
        return out


def redacted_config(cfg: CaptionRunConfig) -> dict[str, Any]:
    """The config as JSON-able data. Keys are never in it (specs hold only ``api_key_env`` NAMES)."""
    return cfg.model_dump(mode="json")


def run_captioning(cfg: CaptionRunConfig, *, backends: dict[str, CaptionBackend] | None = None,
                   progress: ProgressFn | None = None) -> RunSummary:
    """Plain-Python entry (the CLI and the Prefect flow call this): prepare, then run."""
    engine = CaptionEngine(cfg, backends=backends, progress=progress)
    engine.prepare()
    return engine.run()
