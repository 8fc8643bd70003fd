"""``pedes demo``: the main job on the embedded default (placeholder until implemented)."""
from flows.cli import app  # noqa: F401
