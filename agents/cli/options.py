"""Options every ``labswarm`` subcommand shares: ``--memory`` and the store it names.

``--memory`` wins; without it the store is ``$LABSWARM_MEMORY``, else the embedded store in
``$LABSWARM_HOME`` or ``./.labswarm`` (read through :func:`memory.settings.get_settings`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memory.base import Store
    from memory.settings import Settings

MEMORY_HELP = (
    "memory store: a directory, sqlite:///file, postgresql://...?chroma=URL, or "
    "http(s)://server (default: $LABSWARM_MEMORY, else $LABSWARM_HOME or ./.labswarm)"
)


def memory_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--memory PATH_OR_URL`` to a subcommand."""
    parser.add_argument("--memory", metavar="PATH_OR_URL", default=None, help=MEMORY_HELP)


def open_store(args: argparse.Namespace, settings: Settings | None = None) -> Store:
    """The store ``--memory`` names, else the one the settings name."""
    from memory import get_store
    from memory.settings import get_settings

    return get_store(args.memory or None, settings=settings or get_settings())


def positive_float(text: str) -> float:
    """An argparse type: a number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def at_least(minimum: int, why: str = "", *, most: int | None = None) -> type[int]:
    """An argparse type: an integer of at least ``minimum`` (and at most ``most``, where
    given); ``why`` explains a refusal."""

    reason = f" ({why})" if why else ""

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}{reason}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most}, got {text}{reason}")
        return value

    check.__name__ = "integer"
    return check  # type: ignore[return-value]
