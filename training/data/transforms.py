"""Image transforms of seed 002 §4.2 (torchvision.transforms.v2).

Training: resize to ``image_size`` (384×128 by default), random horizontal flip, zero padding +
random crop back to ``image_size``, to float tensor, CLIP normalization, random erasing. Test: resize
and normalize only.

Choice: seed 002 names the three augmentations without parameters; we take IRRA's (flip 0.5,
padding 10, erasing p 0.5 with area scale (0.02, 0.4)). Erased pixels are set to 0 *after*
normalization, i.e. to the dataset mean colour.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from training.config import AugmentConfig


def build_train_transform(image_size: tuple[int, int], augment: AugmentConfig) -> v2.Compose:
    """PIL image → normalized float tensor [3, H, W] with the §4.2 augmentations."""
    size = tuple(image_size)
    steps: list[v2.Transform] = [v2.ToImage(), v2.Resize(size, antialias=True)]
    if augment.flip_prob > 0:
        steps.append(v2.RandomHorizontalFlip(p=augment.flip_prob))
    if augment.crop_padding > 0:
        steps += [v2.Pad(augment.crop_padding, fill=0), v2.RandomCrop(size)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(augment.mean), list(augment.std))]
    if augment.erasing_prob > 0:
        steps.append(v2.RandomErasing(p=augment.erasing_prob, scale=tuple(augment.erasing_scale), value=0))
    return v2.Compose(steps)


def build_test_transform(image_size: tuple[int, int], augment: AugmentConfig | None = None) -> v2.Compose:
    """PIL image → normalized float tensor [3, H, W], no randomness."""
    augment = augment or AugmentConfig()
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(tuple(image_size), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(augment.mean), list(augment.std)),
        ]
    )


def seeded_apply(transform: v2.Compose, image, seed: int) -> torch.Tensor:
    """Apply ``transform`` with torch's global RNG seeded by ``seed`` and restored afterwards.

    The engine derives ``seed`` from (run seed, epoch, sample index), so the augmentation of a sample
    does not depend on the number of workers or ranks, nor on where a resumed run restarted.

    Only the CPU generator is seeded (the transforms draw from it): ``torch.manual_seed`` also queues a
    lazy seeding of every accelerator backend and records a stack trace for each, ≈ 2.4 ms a call on a
    CPU-only host, more than decoding and augmenting the image (``benchmarks/RESULTS.md``, "Data loading")."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return transform(image)
