"""The hostpulse server: FastAPI app, ingest and query API over a ``Store``."""
