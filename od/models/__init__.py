"""Old name of od.inference, kept for `od.models.load(spec)` and `python -m od.models.tiny`."""
from od.inference import load  # noqa: F401
