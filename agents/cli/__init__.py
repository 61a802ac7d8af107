"""The ``labswarm`` command: the one place that wires trainer, memory, agents and server.

Run ``labswarm --help``. Each subcommand module in :data:`COMMANDS` exposes
``add_parser(subparsers)``; heavy imports (torch, chromadb, sentence-transformers) happen
inside the command functions so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys

from agents.cli import memory_cmds, run, serve

COMMANDS = (run, memory_cmds, serve)  # each registers its subcommands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labswarm",
        description="Run a swarm of researcher agents with one shared memory of every result.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # clear message, not a traceback, for user errors
        from memory.errors import MemoryError_

        if isinstance(exc, MemoryError_ | FileNotFoundError | ValueError | ImportError):
            print(f"labswarm: error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
