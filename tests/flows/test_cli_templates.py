"""``pedes templates check`` / ``render`` in real subprocesses (seed 002 §3.1), run from another cwd."""

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


def test_check_exact_duplicate_is_a_warning_and_deduplicates(tmp_path):
    """seed 002 §3.1's public bank of 46 templates holds one template twice: an exact duplicate (whitespace
    ignored) warns, is dropped, and the check passes; --dedup-out writes the deduplicated bank."""
    import yaml

    shipped = yaml.safe_load((REPO / "templates" / "tde_templates.yaml").read_text())["templates"]
    texts = list(shipped[:45])
    texts.insert(4, "  " + texts[2].replace(" ", "  ", 1) + " ")  # entry 4 repeats entry 2 word for word
    bank = tmp_path / "bank46.json"
    bank.write_text(__import__("json").dumps(texts))
    assert len(texts) == 46
    res = pedes("templates", "check", str(bank), "--dedup-out", str(tmp_path / "dedup.txt"), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    warnings = [line for line in res.stdout.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING entry 4: exact duplicate of entry 2")
    assert "45 templates OK (1 exact duplicate(s) dropped)" in res.stdout
    assert "BAD" not in res.stdout and "Traceback" not in res.stderr
    written = (tmp_path / "dedup.txt").read_text().splitlines()
    assert written == [" ".join(t.split()) for i, t in enumerate(texts) if i != 4]


def test_check_reused_id_with_other_text_is_still_bad(tmp_path):
    bank = tmp_path / "bank.yaml"
    bank.write_text("templates:\n"
                    "  - {id: t1, text: 'A [person/woman/man] wearing [clothing description].'}\n"
                    "  - {id: t1, text: 'With [hair description], the [person/woman/man] walks.'}\n")
    res = pedes("templates", "check", str(bank), cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "BAD entry 1" in res.stdout and "WARNING" not in res.stdout
