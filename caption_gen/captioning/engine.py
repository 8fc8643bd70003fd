"""The captioning engine: per shard decode → requests → batched generation → validation → retry → write.

Issue 3 items 3–5. For every shard of the plan (:mod:`caption_gen.captioning.plan`) that is not done yet:

1. decode each image (:func:`caption_gen.images.decode.decode_image`); failures become reject rows
   (``stage="decode"``) and the run goes on; duplicate copies are rejected by the plan;
2. for each model spec × kind, render the instruction once per image
   (:meth:`InstructionSet.render` — the TDE template / style is drawn from a seeded RNG, so reruns
   draw the same one) and build one :class:`GenerationRequest` per (image, kind, model);
3. generate in batches of ``batch_size``; a batch whose ``generate`` call raises is re-submitted up
   to ``retry.batch_retries`` times, then each of its captions is rejected (``stage="generation"``,
   ``reason="generation:error"``, the exception text in ``detail``) and the run goes on;
4. validate each text (:func:`caption_gen.validation.validate.validate_caption`); a rejected caption
   is regenerated with seed ``base + attempt - 1`` and temperature ``+ retry.temperature_bump`` per
   extra attempt (capped) up to ``retry.max_attempts`` attempts, then written to ``rejects/`` with the
   reasons of *all* attempts (``reason`` = the last attempt's first reason);
5. write the shard's accepted rows and rejects with :meth:`CorpusWriter.write_shard` (atomic, done
   marker last). After the last shard the manifest is (re)written with :meth:`CorpusWriter.finalize`.

Per-caption base seed: the first 8 bytes of ``sha256(f"{seed}:{image_id}:{kind}:{model}")`` as an
int below 2**31 — stable across reruns, machines and shard sizes.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from caption_gen.backends.base import CaptionBackend, GenerationRequest, GenerationResult
from caption_gen.backends.spec import ModelSpec
from caption_gen.captioning.config import CaptionRunConfig
from caption_gen.captioning.plan import RunPlan, ShardPlan, plan_shards
from caption_gen.corpus.rows import caption_row, reject_row
from caption_gen.corpus.writer import CorpusWriter
from pedes_core.errors import ConfigError
from caption_gen.images.decode import DecodedImage, ImageRejected, decode_image
from caption_gen.instructions.bank import Instruction, InstructionSet
from caption_gen.validation.validate import validate_caption

_SEED_MODULUS = 2**31


def caption_seed(seed: int, image_id: str, kind: str, model: str) -> int:
    """Base seed of one (image, kind, model) caption (attempt k uses base + k - 1)."""
    digest = hashlib.sha256(f"{seed}:{image_id}:{kind}:{model}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_MODULUS


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
        self.instructions = InstructionSet.load(cfg.instructions, cfg.templates, cfg.style_bank)
        self.instructions.check_kinds(cfg.kinds, styled=cfg.styled)
        for kind in cfg.kinds:
            cfg.validation.for_kind(kind)
        from caption_gen.backends.factory import build_backend

        for spec in cfg.models:
            self.backends[spec.label] = self._given.get(spec.label) or build_backend(spec)

    # ------------------------------------------------------------------------------ one shard
    def _jobs(self, images: Sequence[DecodedImage], spec: ModelSpec) -> list[_Job]:
        assert self.instructions is not None
        s = self.cfg.sampling
        jobs = []
        for kind in self.cfg.kinds:
            for img in images:
                instr = self.instructions.render(kind, image_id=img.image_id, seed=self.cfg.seed, styled=self.cfg.styled)
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

    def _caption_model(self, spec: ModelSpec, images: Sequence[DecodedImage]) -> tuple[list[dict], list[dict], Counter]:
        backend = self.backends[spec.label]
        rows: list[dict] = []
        rejects: list[dict] = []
        attempts: Counter = Counter()
        pending = self._jobs(images, spec)
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
        """Decode, caption and validate one shard (nothing is written)."""
        t0 = time.perf_counter()
        rejects: list[dict] = [d.to_reject_row() for d in shard.duplicates]
        images: list[DecodedImage] = []
        for ref, sha in shard.images:
            try:
                images.append(decode_image(ref, max_pixels=self.cfg.max_image_pixels))
            except ImageRejected as rej:
                rejects.append(rej.to_reject_row(ref, rej.sha256 or sha or None))
        n_bad = len(rejects)
        self.progress(n_bad, 0, n_bad)
        rows: list[dict] = []
        attempts: Counter = Counter()
        t_gen = time.perf_counter()
        for spec in self.cfg.models:
            r, j, a = self._caption_model(spec, images)
            rows.extend(r)
            rejects.extend(j)
            attempts.update(a)
        self.progress(len(images), len(rows), len(rejects) - n_bad)
        stats = {
            "images": shard.size, "decoded": len(images), "seconds": round(time.perf_counter() - t0, 3),
            "generation_seconds": round(time.perf_counter() - t_gen, 3),
            "accepted_by_attempt": {str(k): v for k, v in sorted(attempts.items())},
        }
        return ShardResult(shard.index, rows, rejects, stats)

    # ------------------------------------------------------------------------------- the run
    def plan(self) -> RunPlan:
        return plan_shards(self.cfg.images, shard_size=self.cfg.shard_size, image_root=self.cfg.image_root)

    def run(self, plan: RunPlan | None = None, *, on_plan: Callable[[RunPlan, set[int]], None] | None = None) -> RunSummary:
        """Caption every shard that is not done yet, then finalize the manifest."""
        t0 = time.perf_counter()
        cfg = self.cfg
        if self.instructions is None:
            self.prepare()
        plan = plan or self.plan()
        if plan.total_images == 0:
            raise ConfigError(f"images: no images found in {cfg.images}")
        accepted = rejected = written = skipped = images = 0
        with CorpusWriter(cfg.out, image_root=plan.image_root) as writer:
            done = writer.done_shards()
            if on_plan is not None:
                on_plan(plan, done)
            for shard in plan.shards:
                if shard.index in done:
                    skipped += 1
                    continue
                result = self.caption_shard(shard)
                writer.write_shard(shard.index, result.rows, result.rejects, extra_stats=result.stats)
                written += 1
                images += shard.size
                accepted += len(result.rows)
                rejected += len(result.rejects)
            manifest = writer.finalize(
                name=cfg.corpus_name, config=redacted_config(cfg), models=[m.label for m in cfg.models],
                banks=self._banks(), description=cfg.description,
                sources=[{"images": cfg.images, "image_root": plan.image_root, "images_found": plan.total_images}],
            )
        return RunSummary(str(cfg.out), len(plan.shards), written, skipped, images, accepted, rejected,
                          time.perf_counter() - t0, manifest)

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
