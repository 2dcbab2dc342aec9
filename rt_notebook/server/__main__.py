"""Command-line entry point: ``python -m rt_notebook.server`` (see :mod:`.cli`)."""

from rt_notebook.server.cli import main

raise SystemExit(main())
