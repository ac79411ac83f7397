"""od: MusicGen with new conditioning signals. Importing od must not import torch.

Importing od makes the process offline-first (od.environment.setup: HF_HUB_OFFLINE=1 unless the
user set it, od's team config for AudioCraft, ffmpeg on PATH) before anything else can import
AudioCraft: with laion-clap installed, `import audiocraft.models` builds RoBERTa tokenizers at
import time, which without it retries the hub for minutes.
"""
from . import environment as _environment

__version__ = '0.1.0'
_environment.setup()
