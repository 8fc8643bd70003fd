"""GradNorm task balancing for seed 000 (§3.5 Eq. 5–6, §4.2).

* task weights ``w_k = exp(s_k)``, ``s_k`` initialised to 0;
* ``G_k = ‖∇_θ (w_k L_k)‖₂`` on the *last shared layer* θ (one weight tensor given by the caller);
* ``r̃_k = (L_k / L_k⁰) / mean_j (L_j / L_j⁰)`` with ``L_k⁰`` the first observed loss of task k;
* ``G_ref = G_1`` (the first task; the paper's "typically"), or the mean ``mean_k G_k`` of the original
  GradNorm (``reference="mean"``); targets are constants (detached), as in GradNorm (Chen et al. 2018);
* the weights have their own Adam optimiser (lr 0.025, §4.2) and after each update are renormalised to sum
  to the task count and clipped to [1e-4, 10] (§4.2).

**Reading of α (declared).** Eq. 6 prints α as the *coefficient* of ``L_GradNorm`` in the total loss
(``α L_GradNorm + λ Σ_k (log w_k)²``), and §3.5 calls it the "strength" of that loss. Taken literally α
does nothing: the only parameters ``L_GradNorm`` trains are the ``s_k``, their Adam update is invariant to
a constant scale of the loss, so α only rescales against the tiny λ term (α = 1.5 → 150 moved the weights
by < 2e-7 in our toy). α = 1.5 together with a weight learning rate of 0.025 is exactly the original
GradNorm's setting, where α is the *asymmetry exponent* of the target, ``G_ref · r̃_k^α``: α > 0 pushes
more gradient to the tasks that train slower, α = 0 equalises the gradient norms. We therefore read α as
that exponent (``alpha_mode="exponent"``, the default):

    L_GradNorm = Σ_k |G_k − G_ref · r̃_k^α|,   the weights minimise  L_GradNorm + λ Σ_k (log w_k)².

``alpha_mode="coefficient"`` keeps the literal Eq. 5–6 (target ``r̃_k G_ref``, weights minimise
``α L_GradNorm + λ Σ_k (log w_k)²``) for comparison. In both modes the term ``Σ w_k L_k`` of Eq. 6 updates
the network only — letting it move the weights would drive them all to zero (the renormalisation exists
for this reason in GradNorm too). Under DDP each rank updates its weights from its own gradient norms
(not all-reduced).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch

AlphaMode = Literal["exponent", "coefficient"]
Reference = Literal["first", "mean"]


class GradNorm:
    """Learnable task weights updated once per training step by :meth:`step`."""

    def __init__(
        self,
        tasks: Sequence[str],
        alpha: float = 1.5,
        lr: float = 0.025,
        log_reg: float = 1e-3,
        clip: tuple[float, float] = (1e-4, 10.0),
        device: torch.device | str = "cpu",
        alpha_mode: AlphaMode = "exponent",
        reference: Reference = "first",
    ) -> None:
        if not tasks:
            raise ValueError("GradNorm needs at least one task")
        if alpha_mode not in ("exponent", "coefficient"):
            raise ValueError(f"GradNorm alpha_mode {alpha_mode!r} (exponent | coefficient)")
        if reference not in ("first", "mean"):
            raise ValueError(f"GradNorm reference {reference!r} (first | mean)")
        self.tasks = list(tasks)
        self.alpha, self.log_reg, self.clip = alpha, log_reg, clip
        self.alpha_mode, self.reference = alpha_mode, reference
        self.log_weights = torch.zeros(len(self.tasks), device=device, requires_grad=True)  # s_k
        self.initial_losses = torch.full((len(self.tasks),), float("nan"), device=device)
        self.optimizer = torch.optim.Adam([self.log_weights], lr=lr)

    @property
    def weights(self) -> torch.Tensor:
        """Current ``w_k = exp(s_k)`` (detached)."""
        return self.log_weights.detach().exp()

    def to(self, device: torch.device) -> GradNorm:
        if self.log_weights.device != device:
            state = self.state_dict()
            self.log_weights = torch.zeros(len(self.tasks), device=device, requires_grad=True)
            self.initial_losses = self.initial_losses.to(device)
            self.optimizer = torch.optim.Adam([self.log_weights], lr=self.optimizer.param_groups[0]["lr"])
            self.load_state_dict(state)
        return self

    def step(self, losses: Mapping[str, torch.Tensor], shared: torch.Tensor) -> dict[str, torch.Tensor]:
        """Update the weights from this step's losses (graph kept for the caller's backward).

        Returns ``weights`` (the weights *before* this update, used for this step's total loss),
        ``gradnorm_loss`` (detached, for logging) and ``log_reg`` ``λ Σ (log w_k)²`` (detached)."""
        if set(losses) != set(self.tasks):
            raise ValueError(f"GradNorm tasks {self.tasks} but got losses {sorted(losses)}")
        self.to(shared.device)
        values = torch.stack([losses[t].detach().float() for t in self.tasks])
        unset = torch.isnan(self.initial_losses)
        self.initial_losses[unset] = values[unset]
        used_weights = self.weights.clone()
        norms = []
        for t in self.tasks:
            loss = losses[t]
            if not loss.requires_grad:
                norms.append(torch.zeros((), device=shared.device))
                continue
            (grad,) = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
            norms.append(torch.zeros((), device=shared.device) if grad is None else grad.float().norm())
        g = torch.stack(norms)  # ‖∇_θ L_k‖; G_k = w_k g_k
        w = self.log_weights.exp()
        G = w * g
        ratios = values / self.initial_losses.clamp_min(1e-12)
        r_tilde = ratios / ratios.mean().clamp_min(1e-12)
        g_ref = G[0] if self.reference == "first" else G.mean()
        if self.alpha_mode == "exponent":
            target = (g_ref * r_tilde.pow(self.alpha)).detach()
            scale = 1.0
        else:  # the literal Eq. 5-6: α multiplies L_GradNorm
            target = (g_ref * r_tilde).detach()
            scale = self.alpha
        gn_loss = (G - target).abs().sum()
        reg = self.log_reg * self.log_weights.pow(2).sum()
        self.optimizer.zero_grad(set_to_none=True)
        (scale * gn_loss + reg).backward()
        self.optimizer.step()
        with torch.no_grad():
            new = self.log_weights.exp()
            new = (new * len(self.tasks) / new.sum()).clamp(*self.clip)
            self.log_weights.copy_(new.log())
        return {"weights": used_weights, "gradnorm_loss": gn_loss.detach(), "log_reg": reg.detach(),
                "grad_norms": g.detach()}

    def state_dict(self) -> dict[str, object]:
        return {"log_weights": self.log_weights.detach().clone(), "initial_losses": self.initial_losses.clone(),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        with torch.no_grad():
            self.log_weights.copy_(state["log_weights"])  # type: ignore[arg-type]
        self.initial_losses.copy_(state["initial_losses"])  # type: ignore[arg-type]
        self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
