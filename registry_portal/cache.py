"""The shared cache on Redis, with the database as its fallback while Redis is down.

By default the shared cache is the broker's Redis (settings, "Throttled authentication"), and
a broker outage must fail no push (issue 19): the throttling counters that every token and
login request reads would otherwise answer 500 while Redis is away. Each call tries Redis
first; when Redis refuses or times out, the call goes to the database cache (the alias
``database``, the table ``portal_cache`` that ``migrate`` creates), and a warning is logged
at most every ``WARN_EVERY_SECONDS``. Counters kept there during the outage are not added
to Redis's when it returns: throttling stays on, counted afresh.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

FALLBACK_ALIAS = "database"
WARN_EVERY_SECONDS = 30.0
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
_METHODS = (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "has_key",
    "incr",
    "set_many",
    "delete_many",
    "clear",
)


def _or_database(name: str):
    def method(self, *args, **kwargs):
        try:
            return getattr(RedisCache, name)(self, *args, **kwargs)
        except REDIS_DOWN as error:
            self._redis_down(name, error)
            return getattr(caches[FALLBACK_ALIAS], name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


class RedisWithDatabaseFallback(RedisCache):
    """Django's Redis cache; the database cache answers while Redis is unreachable."""

    _warned_at = float("-inf")

    def _redis_down(self, operation: str, error: Exception) -> None:
        now = time.monotonic()
        if now - RedisWithDatabaseFallback._warned_at >= WARN_EVERY_SECONDS:
            RedisWithDatabaseFallback._warned_at = now
            logger.warning(
                "cache: Redis unreachable (%s: %s), the database cache answers %s and what "
                "follows until it is back",
                type(error).__name__,
                error,
                operation,
            )


for _name in _METHODS:
    setattr(RedisWithDatabaseFallback, _name, _or_database(_name))
