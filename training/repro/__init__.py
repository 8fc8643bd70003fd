"""The miniature LUPerson-MLLM world (DESIGN.md §8): seed 002's ablations and seed 000's clothes-change
claim measured end to end on synthetic pedestrians with the project's own captioners.

* :mod:`training.repro.config` — the typed ``repro`` config (world sizes, recipes, seeds, arms);
* :mod:`training.repro.world` — the disjoint parts of the world (source images, target benchmark);
* :mod:`training.repro.arms` — the ablation arms of seed 002 Table 1 and the recipes each arm trains;
* :mod:`training.repro.runs` — one arm × one seed: pretrain → direct transfer → fine-tune → test;
* :mod:`training.repro.clothes_change` — seed 000's clothes-change protocol, BDAM vs the plain encoder;
* :mod:`training.repro.table` — mean ± std tables in the paper's layout and which directions hold.

The Prefect flow that wires the stages (captioner training and the ``build-corpus`` flow included) is
``flows/repro_flow.py``; ``pedes repro`` runs it.
"""
