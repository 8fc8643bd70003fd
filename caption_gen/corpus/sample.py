"""A random sample of a corpus' caption or reject rows, to read them (``pedes corpus sample``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def sample_rows(corpus: str | Path, *, kind: str | None = None, rejects: bool = False, n: int = 5,
                seed: int = 0) -> list[dict[str, Any]]:
    """Up to ``n`` rows drawn without replacement (reproducible with ``seed``), in corpus order.

    ``kind`` filters on the ``kind`` column; ``rejects`` samples ``rejects/`` instead of the captions.
    """
    import pyarrow.compute as pc

    from caption_gen.corpus.reader import Corpus

    c = Corpus.open(corpus)
    table = c.rejects() if rejects else c.captions()
    if kind is not None:
        table = table.filter(pc.equal(table.column("kind"), kind))
    if table.num_rows == 0 or n < 1:
        return []
    pick = np.sort(np.random.default_rng(seed).choice(table.num_rows, size=min(n, table.num_rows), replace=False))
    return table.take(pick).to_pylist()
