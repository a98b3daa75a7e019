"""Reachability checks for the external services integration tests use."""

from __future__ import annotations

import os

import redis

__all__ = ["amqp_reachable", "ci", "postgres_dsn_that_works", "redis_reachable"]


def ci() -> bool:
    """In CI a missing service is a failure, on a laptop it is a skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def redis_reachable(url: str, timeout: float = 0.5) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def amqp_reachable(url: str, timeout: float = 3.0) -> str | None:
    """None when a login to the broker at ``url`` succeeds, else the reason it did not."""
    from kombu import Connection

    connection = Connection(url, connect_timeout=timeout)
    try:
        connection.connect()
        return None
    except Exception as exc:  # kombu surfaces socket, AMQP and auth errors alike
        return f"{type(exc).__name__}: {exc}"
    finally:
        connection.release()


def postgres_dsn_that_works(candidates: list[str], timeout: int = 3) -> tuple[str | None, str]:
    """The first DSN that accepts a connection, or None with the last error."""
    import psycopg

    error = "no DSN to try"
    for dsn in candidates:
        try:
            with psycopg.connect(dsn, connect_timeout=timeout) as conn:
                conn.execute("SELECT 1")
            return dsn, ""
        except psycopg.Error as exc:
            error = f"{dsn}: {exc}".strip()
    return None, error
