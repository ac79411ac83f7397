"""Experiments: code that trains models (through `dora run` or in process) and measures them.

Outside the library layer (see docs/development.md, Layout): metrics/ keeps the pure measurements these call.
"""
