"""Versioned prompt data shipped with the package: instructions, TDE templates, dual prompts, style prompts.

Use :func:`path` to locate a data file; it works from an installed wheel and from a checkout.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path


def path(name: str) -> Path:
    """Absolute path of a data file shipped in ``templates/`` (e.g. ``path("instructions.yaml")``)."""
    p = Path(str(resources.files(__name__).joinpath(name)))
    if not p.exists():
        raise FileNotFoundError(f"templates/{name} is not shipped with this installation")
    return p


def sha256_text(text: str) -> str:
    """sha256 hex digest of a UTF-8 text; used to hash instructions and banks into every row."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
