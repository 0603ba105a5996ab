"""Suite-wide: the secret-leak guard (tests/leakguard.py) watches every test. Servers built by
tests check ingest requests in their own process (HOSTPULSE_INGEST_WORKERS=0, also should the
default change) unless a test asks for worker processes (tests/server/test_ingest_workers.py):
one interpreter start per test server would double the suite's time."""

import os

os.environ.setdefault("HOSTPULSE_INGEST_WORKERS", "0")

pytest_plugins = ["leakguard", "pgdb", "replicas"]
