"""The ``labswarm`` command: the one place that wires trainer, memory, agents and server.

Run ``labswarm --help``. Each subcommand module in :data:`COMMANDS` exposes
``add_parser(subparsers)``; heavy imports (torch, chromadb, sentence-transformers) happen
inside the command functions so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from agents.cli import memory_cmds, run, serve
from agents.proposers.llm import calls_given_up

COMMANDS = (run, memory_cmds, serve)  # each registers its subcommands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labswarm",
        description="Run a swarm of researcher agents with one shared memory of every result.",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging, and the libraries' own lines (httpx requests, model loads)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


# The packages whose INFO lines are meant for the person at the terminal (what a swarm does,
# which store and model it opened). A library logs at INFO for its own developers: httpx a
# line per request, which buried every command against a labswarm server; those show only
# from WARNING up, or all of it with --verbose.
OWN_LOGGERS = ("agents", "memory", "server", "trainer")


def configure_logging(*, verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        for name in OWN_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(verbose=args.verbose)
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


def console() -> None:
    """The ``labswarm`` command: ``main``, then exit -- at once when a model server's
    answer was given up as the swarm stopped (``agents.proposers.llm.calls_given_up``).
    The proposer's own calls run in daemon threads, which Python does not wait for, but
    LangChain runs some chains in an executor whose threads it joins at exit (a
    structured-output chain that ``llm._RawAndParsed`` cannot split): with a hung server,
    such a process stayed for as long as the server did."""
    code = main()
    if calls_given_up():
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
