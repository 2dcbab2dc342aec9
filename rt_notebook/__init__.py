"""rt_notebook: OpenAI Realtime conversations in Jupyter."""

__version__ = "0.1.0"
