"""The bounds on what a client may store in boards (docs/security.md, "Bounds on dashboards").
Each is refused with a 4xx naming it: 422 for a board's own shape, 409 for the per-user count,
413 for the size of the whole request (max_api_body_bytes, checked before any parsing)."""

from __future__ import annotations

MAX_NAME = 100
"""Characters in a board's name (and a widget's title)."""
MAX_WIDGETS = 40
"""Widgets on one board."""
MAX_VARIABLES = 8
"""Variables (``$host`` ...) on one board."""
MAX_BOARDS_PER_USER = 100
"""Boards one user may own."""
MAX_SPEC_BYTES = 64 * 1024
"""A board's layout as compact JSON (widgets, variables, range), in bytes."""
MAX_LABEL_FILTERS = 8
"""Label filters of one widget."""
GRID_COLUMNS = 12
"""The grid is 12 columns wide; a widget spans 1-12 of them."""
MAX_ROW = 500
"""The lowest row a widget may start on."""
MAX_HEIGHT = 20
"""Rows one widget may span."""
