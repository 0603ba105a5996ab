"""Users, roles, sessions (JWT access + opaque refresh tokens), agent keys and enrollment.

``service.AuthService`` is the one entry point the routes, the ingest fast path and the CLI
use; ``repository.AuthRepository`` is the only code that touches the auth tables.
"""
