"""A small VLM captioner trained on synthetic pedestrians (DESIGN.md §8): a standard Qwen2-VL (or LLaVA,
:mod:`~caption_gen.captioner.architecture`) that the real vLLM engine serves, so the captioning pipeline
produces real, validated captions without downloads.

* :func:`train_captioner` (``pedes captioner train``) — train or reuse a cached model folder;
* :mod:`~caption_gen.captioner.targets` — what the model learns to answer per instruction kind;
* :mod:`~caption_gen.captioner.noise` — injected attribute hallucinations at a known rate;
* :mod:`~caption_gen.captioner.scoring` / :mod:`~caption_gen.captioner.adherence` — attribute accuracy
  and TDE-template adherence of captions (the quality benchmark and tests).
"""

from caption_gen.captioner.config import CaptionerConfig
from caption_gen.captioner.records import CAPTIONER_SEED_BASE, HELDOUT_SEED_BASE
from caption_gen.captioner.train import train_captioner

__all__ = ["CAPTIONER_SEED_BASE", "HELDOUT_SEED_BASE", "CaptionerConfig", "train_captioner"]
