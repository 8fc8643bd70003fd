"""The training engine: one loop for every registered method (AMP, accumulation, DDP, checkpoints)."""
