"""Session fixtures of the engine tests (helpers live in engine_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_fixtures import make_color_corpus


@pytest.fixture(scope="session")
def color_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_color_corpus(tmp_path_factory.mktemp("color-corpus"))
