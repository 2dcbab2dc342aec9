"""Rendering: pacing, block boundaries, safety rules (pure); the cell view (display handles)."""
