"""BDAM (seed 000): encoders, the decoupling module, the Mamba fusion and its selective scan."""

from training.models.bdam.bdam import BDAM, BDAMOutput
from training.models.bdam.fusion import FusionModule, FusionOutput, MambaMixer
from training.models.bdam.selective_scan import selective_scan, selective_scan_ref, selective_scan_torch

__all__ = ["BDAM", "BDAMOutput", "FusionModule", "FusionOutput", "MambaMixer", "selective_scan",
           "selective_scan_ref", "selective_scan_torch"]
