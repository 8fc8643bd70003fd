"""``train_captioner``'s progress callback and cache reuse, at a size that trains in seconds."""

from __future__ import annotations

from caption_gen.captioner import CaptionerConfig, train_captioner
from tests.captioner_settings import MICRO_CAPTIONER

MICRO = MICRO_CAPTIONER


def test_progress_is_called_every_step_and_loss_lines_leave_the_terminal(tmp_path):
    cfg = CaptionerConfig(cache_dir=tmp_path / "cache", **MICRO)
    lines: list[str] = []
    steps: list[tuple[int, int]] = []
    path = train_captioner(cfg, log=lines.append, progress=lambda s, t: steps.append((s, t)))
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert not any("step " in ln for ln in lines)  # with a bar, the loss lines go to the log file only
    assert (path / "config.json").is_file()
    # without a bar, the loss lines are printed; a second call reuses the cached model and trains nothing
    again: list[tuple[int, int]] = []
    assert train_captioner(cfg, log=lines.append, progress=lambda s, t: again.append((s, t))) == path
    assert again == [] and any("reusing cached captioner" in ln for ln in lines)
    printed: list[str] = []
    train_captioner(CaptionerConfig(cache_dir=tmp_path / "cache2", **{**MICRO, "steps": 2}), log=printed.append)
    assert sum("step " in ln for ln in printed) == 2
