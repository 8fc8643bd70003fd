"""Training methods (model + losses) behind one interface; see :mod:`training.methods.base`.

Importing a module registers its methods in :data:`training.registry.METHODS`: ``sdm``, ``nam_sdm`` and
``irra`` (seed 002), ``bdam`` (seed 000), ``weak_dual_granularity`` (seed 001), ``sew_mcm`` (seed 003),
``cfam`` (seed 004); the CLIP-based ones share :class:`training.methods.dual_encoder.DualEncoderMethod`.
"""

from training.methods import bdam, cfam, irra, nam_sdm, sdm, sew_mcm, weak_dual_granularity  # noqa: F401
