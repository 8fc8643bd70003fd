"""``pedes templates check`` / ``render`` in real subprocesses (issue 3 interface), run from another cwd."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pedes(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_check_shipped_bank_prints_slot_summary(tmp_path):
    res = pedes("templates", "check", str(REPO / "templates" / "tde_templates.yaml"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "templates OK" in res.stdout
    for slot in ("[clothing description]", "[hair description]", "[person/woman/man]"):
        assert slot in res.stdout
    assert "Traceback" not in res.stderr


def test_check_plain_text_reports_each_bad_template(tmp_path):
    bank = tmp_path / "bank.txt"
    bank.write_text("# one template per line\n"
                    "A [person/woman/man] wearing [clothing description].\n"
                    "A [person/woman/man] with [haircut description].\n"      # unknown slot
                    "A [person/woman/man wearing [clothing description].\n"   # unbalanced bracket
                    "A person walking down the street.\n"                      # no slot
                    "\n")
    res = pedes("templates", "check", str(bank), cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    bad = [line for line in res.stdout.splitlines() if line.startswith("BAD entry")]
    assert len(bad) == 3, res.stdout
    assert "haircut description" in bad[0]
    assert "3 bad template(s), 1 good" in res.stdout
    assert "Traceback" not in res.stderr


def test_check_missing_file_exits_2(tmp_path):
    res = pedes("templates", "check", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert res.returncode == 2
    assert "nope.yaml" in res.stdout + res.stderr and "Traceback" not in res.stderr


def test_render_is_deterministic_and_records_hash(tmp_path):
    args = ("templates", "render", "--kind", "dynamic", "--image-id", "imgs/00001/1_000.jpg", "--seed", "7")
    a, b = pedes(*args, cwd=tmp_path), pedes(*args, cwd=tmp_path)
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    lines = a.stdout.splitlines()
    assert lines[0].startswith("instruction_id: ") and len(lines[1].split(": ")[1]) == 64
    assert lines[2] != "template_id: -"
