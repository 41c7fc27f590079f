"""What the project prints: one logger, ``backprop``, written on rank 0 only.

``say`` is what a user needs (results, where they went, what was decided for them); ``detail`` is what
``--verbose`` brings back (full gradient-check tables, final weights, Lightning's own start-up lines).
:func:`set_verbose` sets both this logger and Lightning's to match, so a command is quiet unless asked.
Code below the models (the DataModules) logs to a child logger, ``backprop.data``, by name alone; a record with
``once`` set is printed the first time only within a command (each module of ``compare`` reads the same data).
"""

from __future__ import annotations

import logging
import sys

from lightning.pytorch.utilities import rank_zero_only

LOGGER = logging.getLogger("backprop")
# Lightning's loggers: its start-up lines (GPU/TPU, seed, model summary, restoring states) come through these
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")
SAID: set[str] = set()  # the once-only messages printed in this command


class CurrentStdout(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a message comes (``redirect_stdout`` and pytest replace it)."""

    @property
    def stream(self) -> object:
        return sys.stdout

    @stream.setter
    def stream(self, value: object) -> None:
        pass  # logging.StreamHandler sets it once; the property above reads the current one instead


class RankZeroOnce(logging.Filter):
    """Rank 0 only (every rank runs the same code under DDP), and a ``once`` record the first time only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(rank_zero_only, "rank", 0) != 0:
            return False
        if getattr(record, "once", False):
            message = record.getMessage()
            if message in SAID:
                return False
            SAID.add(message)
        return True


if not LOGGER.handlers:  # messages reach a terminal or a log file whoever imports the project, as Lightning's do
    handler = CurrentStdout()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RankZeroOnce())
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False


def say(message: str) -> None:
    LOGGER.info(message)


def say_once(message: str) -> None:
    """A message that would repeat word for word within one command is said the first time only."""
    LOGGER.info(message, extra={"once": True})


def detail(message: str) -> None:
    LOGGER.debug(message)


def set_verbose(verbose: bool) -> None:
    """Details and Lightning's own information lines on (``--verbose``), or off."""
    LOGGER.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


def verbose() -> bool:
    return LOGGER.isEnabledFor(logging.DEBUG)
