"""Training methods (model + losses) behind one interface; see :mod:`training.methods.base`."""
