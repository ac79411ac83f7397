"""The concept app (seed 000's Gradio app): `python -m od.app --dataset egs/<name> --embeds ...`."""
