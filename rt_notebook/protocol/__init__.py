"""Sans-I/O core of rt_notebook: event vocabulary and the conversation mirror.

Nothing in this package touches sockets, threads, the ``openai`` SDK or IPython, so the
client (the kernel Session) and the embedded server can share it and tests can drive it
with plain dictionaries.
"""
