"""Suite-wide: the secret-leak guard (tests/leakguard.py) watches every test."""

pytest_plugins = ["leakguard", "pgdb", "replicas"]
