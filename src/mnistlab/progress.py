"""Progress renderers (interim: silent until the renderers land)."""

from __future__ import annotations

from .models.callbacks import SILENT, FitProgress


def fit_progress(enabled: bool) -> FitProgress:
    return SILENT
