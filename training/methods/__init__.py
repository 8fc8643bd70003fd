"""Training methods (model + losses) behind one interface; see :mod:`training.methods.base`."""

from training.methods import luperson_mllm  # noqa: E402,F401  (registers "sdm", "nam_sdm", "irra")
from training.methods import bdam  # noqa: E402,F401  (registers "bdam")
from training.methods import cfam, sew_mcm, weak_dual_granularity  # noqa: E402,F401  (seeds 003/004/001)
