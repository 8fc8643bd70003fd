"""Losses of IRRA / seed 002: SDM (§3.3), ITC, ID (both modalities) and MLM — one small module each."""

from training.losses.bdam_losses import hsic
from training.losses.id_loss import id_loss
from training.losses.itc import itc_loss
from training.losses.mlm import IGNORE_INDEX, mlm_accuracy, mlm_loss
from training.losses.sdm import DEFAULT_TEMPERATURE, sdm_loss

__all__ = [
    "DEFAULT_TEMPERATURE",
    "IGNORE_INDEX",
    "hsic",
    "id_loss",
    "itc_loss",
    "mlm_accuracy",
    "mlm_loss",
    "sdm_loss",
]
