"""What server replicas share at run time through Redis (``redis_url``): live fan-out of
ingested samples, login throttle and rate limits, invalidation of auth caches and alert
configuration, and the ownership of alert evaluation. Without ``redis_url`` none of this runs
and the server keeps all of it in its own memory. See docs/scale-out-redis.md."""
