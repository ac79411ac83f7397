"""Analysis tools over the embedding spaces od conditions on (see embeddings.py).

Importing the package registers every encoder: encoders.py holds the weight-free ones and the
registry, condition.py adds `cond` (a trained od model's condition tokens) on top of it."""
from . import condition  # noqa: F401  (registers `cond`)
