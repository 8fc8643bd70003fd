"""Every registered method is built from a recipe in one place (``TrainingMethod.from_config``, used by the
trainer's ``build_method``): its typed params model validates ``method.params`` first."""

from __future__ import annotations

import pytest

import training.methods  # noqa: F401  (registers the methods)
from pedes_core.errors import ConfigError
from training.config import RecipeConfig
from training.engine.trainer import build_method
from training.registry import METHODS


def _recipe(name: str, params: dict) -> RecipeConfig:
    return RecipeConfig.model_validate({
        "model": {"arch": "tiny", "image_size": [32, 32], "context_length": 24,
                  "vision": {"patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
                  "text": {"width": 32, "layers": 1}, "embed_dim": 32, "nam_layer": 1},
        "method": {"name": name, "params": params},
        "data": {"benchmark": {"name": "cuhk-pedes", "annotations": "a.json", "images": "imgs"}},
        "eval": {"benchmarks": []},
    })


@pytest.mark.parametrize("name", sorted(METHODS.names()))
def test_every_method_has_a_typed_params_model(name):
    assert METHODS.get(name).params_model is not None


@pytest.mark.parametrize("name,params,message", [
    ("bdam", {"depth": 1, "heads": 2, "fusion_dim": 32, "no_such_param": 1}, "method 'bdam' params.*no_such_param"),
    ("bdam", {"depth": "deep"}, "method 'bdam' params.*depth"),
    ("irra", {"mlm_weight": -1}, "method 'irra' params.*mlm_weight"),
])
def test_bad_params_name_the_method_and_field(name, params, message):
    with pytest.raises(ConfigError, match="(?s)" + message):
        build_method(_recipe(name, params), num_classes=3, num_captions=4)


def test_bdam_params_reach_the_model():
    method = build_method(_recipe("bdam", {"depth": 1, "heads": 2, "fusion": "transformer", "fusion_dim": 32,
                                           "rerank_top_k": 5}), num_classes=3, num_captions=4)
    assert method.rerank_top_k == 5 and len(method.bdam.self_id.layers) == 1
