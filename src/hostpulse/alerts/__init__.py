"""Alerts: rule evaluation, the alert state machine, notification channels and their API."""
