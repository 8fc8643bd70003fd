"""Trained runs in other tools' formats: :func:`export_open_clip` (docs/export.md)."""

from training.export.open_clip_export import CONFIG_NAME, WEIGHTS_NAME, OpenClipExport, export_open_clip

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "OpenClipExport", "export_open_clip"]
