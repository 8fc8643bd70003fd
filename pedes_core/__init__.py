"""The base layer of PEDES Forge: user-facing errors and typed YAML config loading.

Every other package (``caption_gen``, ``eval``, ``training``, ``flows``) may import this one; it
imports none of them (DESIGN.md §1, enforced by the import contracts in ``pyproject.toml``).
"""
