"""od's MusicGen solver: AudioCraft's, with weights resolved offline and checkpoints that load
with `torch.load(weights_only=True)`."""
from __future__ import annotations

from audiocraft.solvers import musicgen as ac_musicgen
from omegaconf import DictConfig, OmegaConf, open_dict

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

    def state_dict(self) -> dict:
        # flashy stores the XP config as an omegaconf DictConfig, whose pickled metadata holds a
        # collections.defaultdict; torch's weights_only unpickler refuses those whatever the
        # allow-list, so resuming would fail on torch >= 2.6. A plain container (interpolations
        # kept) carries the same config and rebuilds with OmegaConf.create().
        state = super().state_dict()
        if isinstance(state.get('xp.cfg'), DictConfig):
            state['xp.cfg'] = OmegaConf.to_container(state['xp.cfg'], resolve=False)
        return state
