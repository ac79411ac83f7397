"""od: MusicGen with new conditioning signals. Version only: importing od must not import torch."""
__version__ = '0.1.0'
