"""Analysis tools over the embedding spaces od conditions on (see embeddings.py)."""
