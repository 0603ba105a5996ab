"""The durable on-disk buffer: ``spool`` (the queue), ``file`` (the segment format), ``state``
(cursor and counters), ``recovery`` (opening after a crash or damage)."""

from hostpulse.agent.delivery.spool.spool import Spool, SpooledRecord, SpoolError, SpoolStats

__all__ = ["Spool", "SpoolError", "SpoolStats", "SpooledRecord"]
