"""Getting snapshots to the server: the spool (``spool/``), the shipper and its transport,
retry/backoff, enrollment, and ``pipeline`` which wires them for the agent service.

Nothing here imports ``hostpulse.agent.service``; the service imports ``pipeline``."""
