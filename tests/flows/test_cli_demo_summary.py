"""The demo's terminal summary fits one screen: counts as a kind × captioner matrix, the reproduction as R1/mAP per
arm and one line per direction, long style prompts cut to the width."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from flows.cli.demo import acceptance_lines, print_summary

KINDS = ("static", "dynamic", "identity", "clothing")
ARMS = ("none", "static-em", "tde-em", "tde-nam")


def _stats(r1: float, n: int = 1) -> dict:
    return {m: {"mean": r1 + i, "std": 0.5 if n > 1 else 0.0, "n": n} for i, m in enumerate(("R1", "R5", "R10", "mAP"))}


def _outputs(tmp_path: Path, seeds: int = 1) -> dict:
    table = tmp_path / "table.md"
    table.write_text("# Miniature LUPerson-MLLM reproduction\n\n| Method | ... |\n" + "| row |\n" * 30)
    acceptance = {f"{k}|{m}": {"accepted": 590 + i, "rows": 600} for i, k in enumerate(KINDS) for m in ("cap-a", "cap-b")}
    return {
        "style_prompts": ["Unlike most descriptions, " + "keep every fragment short and chain details; " * 12] * 5,
        "style_features": "stylometric + neutralized-text n-gram features " * 4,
        "captioning": {"clean": {"accepted": 4788, "rejects": 12, "acceptance": acceptance,
                                 "rejects_by_reason": {"leakage": 8, "too_short": 4}}},
        "caption_examples": {"clean": [{"kind": k, "model": "cap-a", "caption": "A man in a red coat.",
                                        "truth": "man, short black hair | red coat"} for k in KINDS]},
        "repro_table": str(table), "chance_r1": 2.0,
        "direct": {a: _stats(2.0 + i, seeds) for i, a in enumerate(ARMS)},
        "finetune": {a: _stats(20.0 + i, seeds) for i, a in enumerate(ARMS)},
        "directions": [{"claim": f"claim {i}", "status": "holds", "better_R1": 3.0, "worse_R1": 1.5} for i in range(5)]
        + [{"claim": "noisy", "status": "not run"}],
        "synthetic": "/x/synthetic", "corpora": {"clean": "/x/corpus"},
    }


def test_the_summary_fits_one_screen_with_every_count(tmp_path):
    buf = io.StringIO()
    print_summary(Console(file=buf, width=100, highlight=False, soft_wrap=True), _outputs(tmp_path), tmp_path,
                  tmp_path / "pedes.log")
    lines = buf.getvalue().splitlines()
    assert len(lines) <= 50, len(lines)
    assert max(len(ln) for ln in lines) <= 100  # long style prompts are cut to the width, one line each
    assert sum(ln.startswith("  - Unlike") for ln in lines) == 5
    text = buf.getvalue()
    for k in KINDS:  # the kind × captioner matrix holds every count
        assert k in text
    assert text.count("590/600") == 2 and text.count("593/600") == 2
    assert "Static text, EM" in text and "claim 4" in text and "not run" in text
    assert "| row |" not in text  # the full table stays in its file, named at the end
    assert str(tmp_path / "table.md") in text or "table.md" in text


def test_acceptance_matrix_marks_a_missing_cell():
    lines = acceptance_lines({"static|a": {"accepted": 1, "rows": 2}, "dynamic|b": {"accepted": 3, "rows": 3}})
    assert lines[0].split() == ["accepted", "static", "dynamic"]
    assert lines[1].split() == ["a", "1/2", "—"] and lines[2].split() == ["b", "—", "3/3"]
