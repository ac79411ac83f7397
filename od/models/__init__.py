"""Model loading shared by training and inference."""
