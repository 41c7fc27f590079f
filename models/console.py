"""What the project prints: one logger, ``backprop``, written on rank 0 only.

``say`` is what a user needs (results, where they went, what was decided for them); ``detail`` is what
``--verbose`` brings back (full gradient-check tables, final weights, Lightning's own start-up lines).
:func:`set_verbose` sets both this logger and Lightning's to match, so a command is quiet unless asked.
"""

from __future__ import annotations

import logging
import sys

from lightning.pytorch.utilities import rank_zero_only

LOGGER = logging.getLogger("backprop")
# Lightning's loggers: its start-up lines (GPU/TPU, seed, model summary, restoring states) come through these
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")


class CurrentStdout(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a message comes (``redirect_stdout`` and pytest replace it)."""

    @property
    def stream(self) -> object:
        return sys.stdout

    @stream.setter
    def stream(self, value: object) -> None:
        pass  # logging.StreamHandler sets it once; the property above reads the current one instead


if not LOGGER.handlers:  # messages reach a terminal or a log file whoever imports the project, as Lightning's do
    handler = CurrentStdout()
    handler.setFormatter(logging.Formatter("%(message)s"))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False


@rank_zero_only
def say(message: str) -> None:
    LOGGER.info(message)


SAID: set[str] = set()


@rank_zero_only
def say_once(message: str) -> None:
    """A message that would repeat word for word within one command (each module of ``compare`` reading the same
    data) is said the first time only."""
    if message not in SAID:
        SAID.add(message)
        LOGGER.info(message)


@rank_zero_only
def detail(message: str) -> None:
    LOGGER.debug(message)


def set_verbose(verbose: bool) -> None:
    """Details and Lightning's own information lines on (``--verbose``), or off."""
    LOGGER.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


def verbose() -> bool:
    return LOGGER.isEnabledFor(logging.DEBUG)
