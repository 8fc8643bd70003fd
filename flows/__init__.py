"""Prefect flows, deployments and the ``pedes`` CLI: wiring only, no logic (DESIGN.md §7)."""
