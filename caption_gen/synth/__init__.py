"""Procedural synthetic pedestrians: the demo data and the learnable test data (DESIGN.md §8, §9)."""

from caption_gen.synth.attributes import (
    Camera,
    Identity,
    Outfit,
    sample_camera,
    sample_identity,
    sample_outfit,
)
from caption_gen.synth.captions import clothing_text, full_caption, identity_text
from caption_gen.synth.dataset import SynthSummary, render_dataset
from caption_gen.synth.render import render_person

__all__ = [
    "Camera", "Identity", "Outfit", "SynthSummary", "clothing_text", "full_caption", "identity_text",
    "render_dataset", "render_person", "sample_camera", "sample_identity", "sample_outfit",
]
