"""``--set`` overrides: nested keys, YAML values and list items by index (issue 18)."""

from __future__ import annotations

import pytest
from pydantic import Field

from pedes_core.configuration import ConfigModel, IndexedItems, deep_merge, load_config, parse_overrides
from pedes_core.errors import ConfigError


class _Item(ConfigModel):
    name: str
    rate: float = 0.9
    tags: list[str] = Field(default_factory=list)


class _Cfg(ConfigModel):
    lr: float = 1e-3
    kinds: list[str] = Field(default_factory=lambda: ["static"])
    models: list[_Item] = Field(default_factory=list)


def test_nested_scalars_and_yaml_values():
    got = parse_overrides(["train.lr=0.0001", "train.flag=true", "kinds=[static,dynamic]", "x=null"])
    assert got == {"train": {"lr": 0.0001, "flag": True}, "kinds": ["static", "dynamic"], "x": None}


def test_digit_segment_addresses_a_list_item():
    got = parse_overrides(["models.0.rate=0.5", "models.1.name=b"])
    assert isinstance(got["models"], IndexedItems)
    merged = deep_merge({"models": [{"name": "a", "rate": 0.9}, {"name": "x"}]}, got)
    assert merged == {"models": [{"name": "a", "rate": 0.5}, {"name": "b"}]}


def test_list_item_override_through_load_config():
    cfg = load_config(_Cfg, defaults={"models": [{"name": "a"}, {"name": "b"}]},
                      overrides=["models.1.rate=0.25", "models.0.tags.0=t", "lr=0.5"])
    assert [m.rate for m in cfg.models] == [0.9, 0.25]
    assert cfg.models[0].tags == ["t"] and cfg.lr == 0.5


def test_index_equal_to_length_appends_and_larger_is_an_error():
    assert deep_merge({"kinds": ["a"]}, parse_overrides(["kinds.1=b"])) == {"kinds": ["a", "b"]}
    with pytest.raises(ConfigError, match=r"kinds\.3: index out of range"):
        deep_merge({"kinds": ["a"]}, parse_overrides(["kinds.3=b"]))


def test_index_into_a_non_list_and_bad_keys():
    with pytest.raises(ConfigError, match="not a list"):
        deep_merge({"lr": 1.0}, parse_overrides(["lr.0=2"]))
    with pytest.raises(ConfigError, match="list index"):
        parse_overrides(["0.x=1"])
    with pytest.raises(ConfigError, match="conflicts"):
        parse_overrides(["models.0.rate=1", "models.name=x"])
    with pytest.raises(ConfigError, match="empty key segment"):
        parse_overrides(["models..rate=1"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["models"])


def test_whole_list_still_replaces():
    assert deep_merge({"kinds": ["a", "b"]}, parse_overrides(["kinds=[c]"])) == {"kinds": ["c"]}
