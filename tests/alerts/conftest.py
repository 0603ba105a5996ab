"""Fixtures for the alert tests; the receivers live in alert_receivers.py (a unique module
name, so test modules can import its helpers while other test folders have their own conftest)."""

from alert_receivers import http_receiver, smtp_server, smtps_server, tls_cert

__all__ = ["http_receiver", "smtp_server", "smtps_server", "tls_cert"]
