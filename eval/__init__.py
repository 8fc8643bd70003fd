"""Retrieval metrics, the evaluator and reports (DESIGN.md §6).

This package shadows Python's builtin name ``eval`` only as a module path; always import
submodules explicitly: ``from eval.metrics import retrieval_metrics``.
"""
