"""Training methods (model + losses) behind one interface; see :mod:`training.methods.base`."""

from training.methods import luperson_mllm  # noqa: E402,F401  (registers "sdm", "nam_sdm", "irra")
from training.methods import bdam  # noqa: E402,F401  (registers "bdam")
