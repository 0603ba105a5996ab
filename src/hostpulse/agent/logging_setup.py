"""Console and rotating-file logging for the agent, configured once at start."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

from hostpulse.agent.config import LogSettings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_MARK = "_hostpulse_handler"


def setup_logging(settings: LogSettings, *, stream: TextIO | None = None) -> None:
    """Log ``hostpulse.*`` at ``settings.level`` to stderr and, if set, to a rotating file.

    Calling it again replaces the handlers it installed before (tests, ``hostpulse up``).
    """
    logger = logging.getLogger("hostpulse")
    for handler in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(settings.level.upper())
    logger.propagate = False
    formatter = logging.Formatter(FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    if settings.file:
        path = Path(settings.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        # imported only then: logging.handlers imports socket, pickle and queue (1 MB)
        from logging.handlers import RotatingFileHandler

        handlers.append(
            RotatingFileHandler(
                path,
                maxBytes=settings.max_bytes,
                backupCount=settings.backup_count,
                encoding="utf-8",
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _HANDLER_MARK, True)
        logger.addHandler(handler)
