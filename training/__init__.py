"""Datasets, models, losses and the training engine for text-to-image person ReID (DESIGN.md §5)."""

from training.engine.cpu_threads import limit_openmp_nesting as _limit_openmp_nesting

# Before torch is imported this only sets OMP_MAX_ACTIVE_LEVELS=1 for the OpenMP runtime torch will load;
# after, it also sets it on the loaded runtime. See training/engine/cpu_threads.py (a measured 30x CPU
# slow-down once anything, e.g. vLLM, has called torch.set_num_threads).
_limit_openmp_nesting()
