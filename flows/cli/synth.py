"""``pedes synth``: procedural synthetic pedestrians (placeholder until implemented)."""
from flows.cli import app  # noqa: F401
