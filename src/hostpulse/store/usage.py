"""What the stored blocks take, per tier: for the server's own metrics (``hostpulse_store_*``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from hostpulse.store import schema
from hostpulse.store.types import Tier

_TIERS = {schema.Kind.RAW: Tier.RAW, schema.Kind.MINUTE: Tier.MINUTE, schema.Kind.HOUR: Tier.HOUR}


@dataclass(frozen=True, slots=True)
class TierUsage:
    tier: Tier
    blocks: int
    samples: int
    """Samples (raw) or points (rollups)."""
    bytes: int
    """Compressed block data."""


async def tier_usage(engine: AsyncEngine) -> list[TierUsage]:
    """One entry per tier (zeros for a tier without blocks), raw first."""
    b = schema.blocks
    query = select(
        b.c.kind,
        func.count(),
        func.coalesce(func.sum(b.c.samples), 0),
        func.coalesce(func.sum(func.length(b.c.data)), 0),
    ).group_by(b.c.kind)
    async with engine.connect() as conn:
        found = {int(k): (int(n), int(s), int(z)) for k, n, s, z in await conn.execute(query)}
    return [TierUsage(tier, *found.get(int(kind), (0, 0, 0))) for kind, tier in _TIERS.items()]
