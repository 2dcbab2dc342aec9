"""Package command line: ``python -m rt_notebook transcript FILE.jsonl
[--format markdown|json] [--timeline [TURN]]``."""

from __future__ import annotations

import argparse
import sys

from .frontends import transcript

MAX_NOTES = 50  # skipped lines named one by one; past that, counted


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m rt_notebook")
    commands = parser.add_subparsers(dest="command", required=True)
    rebuild = commands.add_parser(
        "transcript", help="rebuild a conversation from a %%realtime record file"
    )
    rebuild.add_argument("file", help="a JSON-lines recording")
    rebuild.add_argument("--format", choices=["markdown", "json"], default="markdown")
    rebuild.add_argument(
        "--timeline",
        nargs="?",
        const="",
        metavar="TURN",
        help="print a turn's events instead (TURN: a response or item id; default: the "
        "last turn; 'session': events of no turn)",
    )
    args = parser.parse_args(argv)
    notes: list[str] = []
    try:
        if args.timeline is not None:
            text = transcript.timeline_text(args.file, args.timeline or None, notes)
        else:
            text = transcript.main(args.file, args.format, notes)
    except (OSError, ValueError) as exc:
        parser.exit(2, f"error: {exc}\n")
    sys.stdout.write(text)
    for note in notes[:MAX_NOTES]:  # what was skipped, on stderr: the transcript stays clean
        sys.stderr.write(f"note: {note}\n")
    if len(notes) > MAX_NOTES:
        sys.stderr.write(f"note: {len(notes) - MAX_NOTES} more lines skipped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
