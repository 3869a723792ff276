"""The shared cache on Redis falls back to the database while Redis is down (issue 19: the
default Redis is the broker's, and a broker outage must fail no token or login request)."""

import pytest
from django.core.cache import caches

from registry_portal.cache import RedisWithDatabaseFallback
from tests.services import need, port_open

CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def redis_cache(location: str) -> RedisWithDatabaseFallback:
    return RedisWithDatabaseFallback(
        location,
        {"KEY_PREFIX": "portal", "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}},
    )


@pytest.mark.django_db
def test_redis_down_is_answered_by_the_database_cache(caplog):
    cache = redis_cache(CLOSED)
    assert cache.get("failures", 0) == 0
    assert cache.add("failures", 1, 60) is True
    assert cache.incr("failures") == 2
    cache.set_many({"a": 1, "b": 2}, 60)
    assert cache.get_many(["a", "b", "failures"]) == {"a": 1, "b": 2, "failures": 2}
    assert cache.has_key("a")
    cache.delete("a")
    assert cache.get("a") is None
    assert caches["database"].get("failures") == 2  # it lives in the database meanwhile
    assert "Redis unreachable" in caplog.text


@pytest.mark.django_db
def test_redis_up_is_used(settings):
    need(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    cache = redis_cache("redis://127.0.0.1:6379/14")
    cache.set("fallback-check", "redis", 60)
    try:
        assert cache.get("fallback-check") == "redis"
        assert caches["database"].get("fallback-check") is None
    finally:
        cache.delete("fallback-check")
