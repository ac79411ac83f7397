"""od's MusicGen solver: AudioCraft's, with weights resolved offline before anything is built."""
from __future__ import annotations

from audiocraft.solvers import musicgen as ac_musicgen
from omegaconf import open_dict

from ..models.loaders import resolve_compression_checkpoint


class MusicGenSolver(ac_musicgen.MusicGenSolver):
    """MusicGen training through od's conditioner registry (installed by od.train)."""

    def build_model(self) -> None:
        # Resolve where the compression model comes from first, so a missing file is a clear
        # MissingWeightsError at start-up rather than a hub retry loop or a deep traceback.
        # The XP config keeps the user's value; only AudioCraft's loader sees the local one.
        original = self.cfg.compression_model_checkpoint
        with open_dict(self.cfg):
            self.cfg.compression_model_checkpoint = resolve_compression_checkpoint(original)
        try:
            super().build_model()
        finally:
            with open_dict(self.cfg):
                self.cfg.compression_model_checkpoint = original
