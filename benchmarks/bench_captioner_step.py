"""Captioner training cost per step: vision stage and joint stage, for variants of the config, against the
default in the same run.

    .venv/bin/python benchmarks/bench_captioner_step.py [--identities 300] [--vision-steps 150] [--steps 200]
        [--variant NAME=KEY=VALUE[,KEY=VALUE...]]... [--json-out F]

Every variant (the default first, as the baseline) trains through the real entry point
(``pedes captioner train``) in its own fresh process, with its own empty cache folder (nothing reused), on
one small ``pedes synth`` folder rendered once. The per-step cost of a stage is read from the training
history: the time between the first and the last loss line of that stage divided by the steps between them,
so model building, image loading, the feature cache and saving are not counted. Ratios are what to compare on
CPU (``baseline ms / variant ms``); the absolute figures depend on the host.

Default variants: the default (Qwen2-VL: patch 16, 2 × 2 merge → 18 image tokens) and ``llava`` (the LLaVA
architecture: 128² squashed, patch 16 → 64 image tokens).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_VARIANTS = ["llava=arch=llava"]


def _per_step(history: list[dict[str, Any]], step_key: str) -> float:
    """Seconds a step from the loss lines of one stage (first to last line)."""
    rows = [h for h in history if step_key in h]
    if len(rows) < 2:
        raise SystemExit(f"bench_captioner_step: fewer than two '{step_key}' log lines; raise the step count")
    first, last = rows[0], rows[-1]
    return (last["seconds"] - first["seconds"]) / (last[step_key] - first[step_key])


def _run_variant(name: str, sets: list[str], synth: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    out, cache = work / f"model-{name}", work / f"cache-{name}"
    cmd = [str(Path(sys.executable).with_name("pedes")), "captioner", "train", "--synthetic", str(synth),
           "--out", str(out), "--steps", str(args.steps), "--set", f"vision_steps={args.vision_steps}",
           "--set", "log_every=25"]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "PEDES_CACHE": str(cache)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"bench_captioner_step: variant {name} failed:\n{done.stderr[-2000:]}")
    stamp = json.loads((out / "captioner.json").read_text())
    return {"variant": name, "sets": sets, "parameters": stamp["parameters"],
            "vision_ms": 1000 * _per_step(stamp["history"], "vision_step"),
            "joint_ms": 1000 * _per_step(stamp["history"], "step")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--identities", type=int, default=300)
    parser.add_argument("--vision-steps", type=int, default=150)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--variant", action="append", default=None,
                        help="NAME=KEY=VALUE[,KEY=VALUE...] (repeatable); default: " + " ".join(DEFAULT_VARIANTS))
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    variants: list[tuple[str, list[str]]] = [("default", [])]
    for spec in args.variant or DEFAULT_VARIANTS:
        name, _, sets = spec.partition("=")
        if not name or not sets:
            raise SystemExit(f"bench_captioner_step: --variant {spec!r} is not NAME=KEY=VALUE[,KEY=VALUE...]")
        variants.append((name, sets.split(",")))
    work = Path(tempfile.mkdtemp(prefix="bench-captioner-step-"))
    synth = work / "synth"
    pedes = str(Path(sys.executable).with_name("pedes"))
    done = subprocess.run([pedes, "synth", "--out", str(synth), "--identities", str(args.identities),
                           "--images-per-identity", "2", "--seed", "31000"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_captioner_step: pedes synth failed:\n{done.stderr[-2000:]}")
    rows = [_run_variant(name, sets, synth, work, args) for name, sets in variants]
    base = rows[0]
    for r in rows:
        r["vision_speedup"] = base["vision_ms"] / r["vision_ms"]
        r["joint_speedup"] = base["joint_ms"] / r["joint_ms"]
    print(f"{'variant':<14}{'params':>10}{'vision ms':>11}{'×':>7}{'joint ms':>10}{'×':>7}")
    for r in rows:
        print(f"{r['variant']:<14}{r['parameters']:>10,}{r['vision_ms']:>11.1f}{r['vision_speedup']:>7.2f}"
              f"{r['joint_ms']:>10.1f}{r['joint_speedup']:>7.2f}")
    report = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()} {os.cpu_count()} cores",
              "command": " ".join(sys.argv), "rows": rows}
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
