"""Rendering: pacing and safety rules (pure) plus the cell view (IPython display handles)."""
