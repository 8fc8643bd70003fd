"""Training methods (model + losses) behind one interface; see :mod:`training.methods.base`."""

from training.methods import luperson_mllm  # noqa: E402,F401  (registers "sdm", "nam_sdm", "irra")
