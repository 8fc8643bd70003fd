"""Quality of the trained captioner through the real vLLM engine (issue 18 item 2).

    VLLM_TARGET_DEVICE=cpu .venv/bin/python benchmarks/bench_captioner.py --model MODEL_DIR [--images 48]
    VLLM_TARGET_DEVICE=cpu .venv/bin/python benchmarks/bench_captioner.py --train [--steps N --seed S --noise R]

Held-out images: ``pedes synth`` people rendered with the reserved seed ``HELDOUT_SEED_BASE`` (20000),
never seen by a captioner (trained on seed 10000 + s or on a folder's train split). The images go
through the real pipeline (``run_captioning``: decode, instructions, vLLM CPU engine with its CPU
defaults and no engine config, validation, up to 3 attempts, Parquet shards), all four kinds. Per kind:

* acceptance — accepted captions / images (and the share accepted at the first attempt);
* attribute accuracy per group (top colour/type, bottom colour/type, shoe colour, bag, gender, hair)
  of the accepted captions vs ``attributes.jsonl`` (:mod:`caption_gen.captioner.scoring`; dynamic:
  only groups its template has a slot for), and the mean over groups;
* TDE adherence — dynamic captions (accepted, and all final texts incl. rejects) that follow their
  template's slot structure (:mod:`caption_gen.captioner.adherence`);
* leakage — identity texts free of clothing terms and clothing texts free of identity terms, over all
  final texts (accepted + rejected; accepted ones pass the leakage rule by construction).

Targets: static accepted >= 90 % and mean attribute accuracy >= 85 %; dynamic adherence >= 80 %;
identity texts free of clothing terms >= 95 %. Prints one JSON object (``--json-out`` writes it too).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

KINDS = ("static", "dynamic", "identity", "clothing")


def _heldout(root: Path, images: int, seed_offset: int) -> Path:
    from caption_gen.captioner.records import HELDOUT_SEED_BASE
    from caption_gen.synth import render_dataset

    ids = max(1, images // 2)
    out = root / f"heldout-{HELDOUT_SEED_BASE + seed_offset}-{ids}"
    if not (out / "synth.json").exists():
        render_dataset(out, identities=ids, images_per_identity=2, seed=HELDOUT_SEED_BASE + seed_offset,
                       val_fraction=0.0, test_fraction=0.0)
    return out


def evaluate_corpus(corpus: Path, synth: Path) -> dict:
    """The figures of the module docstring for a corpus captioned from ``synth/imgs``."""
    import pandas as pd

    from caption_gen.captioner.adherence import follows_template
    from caption_gen.captioner.corpus_accuracy import corpus_attribute_accuracy
    from caption_gen.instructions.bank import InstructionSet
    from caption_gen.validation.rules import leakage_terms

    accuracy = corpus_attribute_accuracy(corpus, synth, list(KINDS))
    templates = {t.template_id: t for t in InstructionSet.load().templates}
    rows = pd.concat([pd.read_parquet(p) for p in sorted((corpus / "shards").glob("*.parquet"))], ignore_index=True)
    rej_files = sorted((corpus / "rejects").glob("*.parquet"))
    rejects = pd.concat([pd.read_parquet(p) for p in rej_files], ignore_index=True) if rej_files else None
    out: dict = {}
    for kind in KINDS:
        acc = rows[rows["kind"] == kind]
        rej = rejects[rejects["kind"] == kind] if rejects is not None else acc.iloc[0:0]
        n = len(acc) + len(rej)
        k: dict = {"captions": n, "accepted": len(acc), "acceptance": round(len(acc) / n, 4) if n else None,
                   "accepted_first_attempt": round(int((acc["attempt"] == 1).sum()) / n, 4) if n else None}
        reasons: dict[str, int] = defaultdict(int)
        if rejects is not None:
            for rs in rej["reasons"]:
                for r in rs:
                    reasons[r] += 1
        k["reject_reasons"] = dict(sorted(reasons.items(), key=lambda kv: -kv[1]))
        scored = accuracy.get(kind, {"groups": {}, "mean": None})
        k["attribute_accuracy"] = scored["groups"]
        k["attribute_accuracy_mean"] = scored["mean"]
        finals = list(acc["caption"]) + [c for c in rej["caption"] if isinstance(c, str)]
        if kind == "dynamic":
            ok_acc = [follows_template(r["caption"], templates[r["template_id"]].text) for _, r in acc.iterrows()]
            ok_all = ok_acc + [follows_template(r["caption"], templates[r["template_id"]].text)
                               for _, r in rej.iterrows() if isinstance(r["caption"], str)]
            k["tde_adherence_accepted"] = round(sum(ok_acc) / len(ok_acc), 4) if ok_acc else None
            k["tde_adherence_all"] = round(sum(ok_all) / n, 4) if n else None
        if kind in ("identity", "clothing"):
            clean = [not leakage_terms(c, kind) for c in finals]
            k["leakage_free_all"] = round(sum(clean) / len(clean), 4) if clean else None
        k["examples"] = list(acc["caption"].head(3))
        out[kind] = k
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="trained captioner folder")
    ap.add_argument("--train", action="store_true", help="train (or reuse from the cache) the default captioner")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=0.0)
    ap.add_argument("--images", type=int, default=48, help="held-out images (people x 2)")
    ap.add_argument("--heldout-seed", type=int, default=0, help="offset of the held-out synth seed")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
    from caption_gen.captioning.config import CaptionRunConfig
    from caption_gen.captioning.engine import run_captioning

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-captioner-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train_s = None
    if args.train:
        from caption_gen.captioner import CaptionerConfig, train_captioner

        cfg = CaptionerConfig(seed=args.seed, noise=args.noise, **({"steps": args.steps} if args.steps else {}))
        model = train_captioner(cfg, log=print)
        train_s = json.loads((model / "captioner.json").read_text()).get("train_seconds")
    elif args.model is not None:
        model = args.model.absolute()
    else:
        ap.error("give --model DIR or --train")
    synth = _heldout(work, args.images, args.heldout_seed)
    corpus = work / "corpus"
    cfg = CaptionRunConfig(images=str(synth / "imgs"), out=corpus, models=[{"backend": "vllm", "path": str(model)}],
                           kinds=list(KINDS), progress=False)
    t1 = time.perf_counter()
    summary = run_captioning(cfg)
    caption_s = time.perf_counter() - t1
    result = {"model": str(model), "heldout_synth": str(synth), "images": summary.images,
              "caption_seconds": round(caption_s, 1), "train_seconds": train_s,
              "kinds": evaluate_corpus(corpus, synth)}
    st, dy, idn = result["kinds"]["static"], result["kinds"]["dynamic"], result["kinds"]["identity"]
    result["targets"] = {
        "static_acceptance>=0.90": st["acceptance"] is not None and st["acceptance"] >= 0.90,
        "static_attribute_accuracy>=0.85": (st["attribute_accuracy_mean"] or 0) >= 0.85,
        "dynamic_adherence>=0.80": (dy.get("tde_adherence_all") or 0) >= 0.80,
        "identity_leakage_free>=0.95": (idn.get("leakage_free_all") or 0) >= 0.95,
    }
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        args.json_out.write_text(text)


if __name__ == "__main__":
    main()
