"""Seed 000 Fig. 4: histograms of the learned gate weights (BDAM identity vs clothing, fusion image vs text)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_gate_histogram(identity_gate: np.ndarray, modality_weights: np.ndarray | None, path: str | Path) -> Path:
    """Write the PNG: (a) per-sample mean identity gate ``mean_d g`` vs clothing ``1 − mean_d g``;
    (b) fusion ``W_img`` vs ``W_txt`` when given. Means/stds are printed in the panel titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if modality_weights is not None and len(modality_weights) else 1
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6), squeeze=False)
    bins = np.linspace(0, 1, 41)
    ident = np.asarray(identity_gate, dtype=float)
    ax = axes[0, 0]
    ax.hist(ident, bins=bins, alpha=0.65, label=f"identity (mean {ident.mean():.2f}, sd {ident.std():.2f})")
    ax.hist(1 - ident, bins=bins, alpha=0.65, label=f"clothing (mean {(1 - ident).mean():.2f})")
    ax.set(title="(a) BDAM gate", xlabel="weight", ylabel="samples")
    ax.legend(fontsize=8)
    if panels == 2:
        mw = np.asarray(modality_weights, dtype=float)
        ax = axes[0, 1]
        ax.hist(mw[:, 0], bins=bins, alpha=0.65, label=f"image (mean {mw[:, 0].mean():.2f})")
        ax.hist(mw[:, 1], bins=bins, alpha=0.65, label=f"text (mean {mw[:, 1].mean():.2f})")
        ax.set(title="(b) fusion modality gate", xlabel="weight")
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
