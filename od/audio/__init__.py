"""Audio post-processing (clean-up of generated audio)."""
