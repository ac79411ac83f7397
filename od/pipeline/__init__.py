"""The one-command pipeline (ingest -> train -> soundtracks -> report) and the training-side steps it
drives through od.train: starting checkpoints (make_ckpt) and cache filling (prep)."""
from .stages import Pipeline, PipelineError, run, soundtrack_dir, weighted_metrics  # noqa: F401
