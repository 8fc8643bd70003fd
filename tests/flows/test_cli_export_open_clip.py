"""``pedes export open-clip``: the exported folder loads with plain open_clip in a fresh, isolated interpreter
(nothing of this project importable) and gives the same features as the trained method (docs/export.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from training.config import RecipeConfig

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["a woman in a white shirt and blue jeans carrying a red bag", "a man with black shoes"]

LOADER = textwrap.dedent('''
    import json, sys
    import torch, open_clip
    d, out = sys.argv[1], sys.argv[2]
    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + d)
    tokenizer = open_clip.get_tokenizer("local-dir:" + d)
    model.eval()
    images = torch.load(d + "/../images.pt")
    tokens = tokenizer(json.loads(open(d + "/../texts.json").read()))
    with torch.no_grad():
        feats = {"image": model.encode_image(images), "text": model.encode_text(tokens), "tokens": tokens}
    ours = sorted(m for m in sys.modules if m.split(".")[0] in ("training", "caption_gen", "flows", "pedes_core", "eval"))
    resize = [t for t in preprocess.transforms if type(t).__name__ == "Resize"][0]
    torch.save({**feats, "ours": ours, "resize": list(resize.size) if not isinstance(resize.size, int) else [resize.size]}, out)
''')


def _recipe(stride: int) -> RecipeConfig:
    bench = {"name": "cuhk-pedes", "annotations": "/nonexistent/reid_raw.json", "images": "/nonexistent/imgs"}
    return RecipeConfig.model_validate({
        "model": {"arch": "tiny", "image_size": [384, 128], "stride": stride,
                  "vision": {"patch_size": 16, "width": 32, "layers": 2, "head_width": 16},
                  "text": {"width": 32, "layers": 2, "heads": 2}, "nam_layer": 1, "embed_dim": 24},
        "method": {"name": "irra", "params": {"id_weight": 1.0, "mlm_weight": 1.0, "cmt_depth": 1}},
        "data": {"benchmark": bench},
        "engine": {"device": "cpu", "output_dir": "/nonexistent/runs"},
    })


def _run_dir(tmp_path: Path, stride: int = 16):
    from training.engine.trainer import build_method

    recipe = _recipe(stride)
    torch.manual_seed(0)
    method = build_method(recipe, num_classes=5, num_captions=10)
    with torch.no_grad():  # move every weight off its init so a wrong or missing tensor shows
        for p in method.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"model": method.state_dict(), "config": recipe.model_dump(mode="json"),
                "meta": {"num_classes": 5, "num_captions": 10, "method": "irra"}}, run / "checkpoints" / "final.pt")
    return method.eval(), run


def _pedes(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_open_clip_loads_the_export_and_matches_features(tmp_path):
    method, run = _run_dir(tmp_path)
    out = tmp_path / "export" / "model"
    proc = _pedes("export", "open-clip", str(run), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads((out / "open_clip_config.json").read_text())
    assert cfg["model_cfg"]["vision_cfg"]["image_size"] == [384, 128]
    assert cfg["preprocess_cfg"]["size"] == [384, 128]
    assert (cfg["pedes"]["patch_size"], cfg["pedes"]["patch_stride"]) == (16, 16)
    assert str(tmp_path) not in json.dumps(cfg)  # no local paths in the shipped config
    images = torch.randn(3, 3, 384, 128, generator=torch.Generator().manual_seed(1))
    torch.save(images, out.parent / "images.pt")
    (out.parent / "texts.json").write_text(json.dumps(TEXTS))
    loader = tmp_path / "load.py"
    loader.write_text(LOADER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    fresh = subprocess.run([sys.executable, "-I", str(loader), str(out), str(tmp_path / "feats.pt")], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    got = torch.load(tmp_path / "feats.pt")
    assert got["ours"] == []
    assert got["resize"] == [384, 128]
    tokens = method.tokenizer(TEXTS)
    assert torch.equal(got["tokens"], tokens)
    with torch.no_grad():
        want_image = method.encode_image(images)
        want_text = method.encode_text(tokens)
    assert want_image.shape == (3, 24)
    torch.testing.assert_close(got["image"], want_image, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got["text"], want_text, rtol=1e-4, atol=1e-5)


def test_overlapping_patch_stride_is_refused(tmp_path):
    from pedes_core.errors import ConfigError
    from training.export import export_open_clip

    _, run = _run_dir(tmp_path, stride=12)
    with pytest.raises(ConfigError, match="patch stride"):
        export_open_clip(run, tmp_path / "out")
    assert not (tmp_path / "out").exists()
