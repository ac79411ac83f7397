"""Frozen pretrained encoders and codecs (CLIP, CLAP, EnCodec) with their loaders: below the conditioners."""
