"""``resolver`` / ``resolver_timeout``: reading them (nginx's errors) and
the lookups (ngxws.proxy.resolver) against a real tiny DNS server on
127.0.0.1 (tests/dns_server.py): A and AAAA, ``ipv6=off``, answers kept
for the TTL or ``valid=``, failures with nginx's codes, the timeout, a
second server asked when the first is silent."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from dns_server import DnsServer, Record

from ngxws.config.loader import ConfigError, load_config
from ngxws.config.model import Config, Resolver
from ngxws.proxy.resolver import TIMED_OUT, NameCache, ResolveFailed, strerror


@pytest.fixture
def server() -> Iterator[DnsServer]:
    s = DnsServer(
        {
            "app.test": Record(a=("127.0.0.1", "127.0.0.2"), ttl=60),
            "both.test": Record(a=("127.0.0.1",), aaaa=("::1",), ttl=30),
            "six.test": Record(aaaa=("::1",)),
        },
        silent=frozenset({"silent.test"}),
        servfail=frozenset({"fail.test"}),
    )
    yield s
    s.close()


T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_a_and_aaaa(server: DnsServer) -> None:
    cache = NameCache()
    r = Resolver((("127.0.0.1", server.port),))
    assert run(cache.resolve(r, "both.test", 5)) == ["127.0.0.1", "::1"]
    assert sorted(server.queries) == [("both.test", "A"), ("both.test", "AAAA")]


def test_ipv6_off_asks_for_a_only(server: DnsServer) -> None:
    r = Resolver((("127.0.0.1", server.port),), ipv6=False)
    assert run(NameCache().resolve(r, "both.test", 5)) == ["127.0.0.1"]
    assert server.queries == [("both.test", "A")]
    with pytest.raises(ResolveFailed, match=r"^six.test could not be resolved \(3: Host not found\)$"):
        run(NameCache().resolve(r, "six.test", 5))


def test_answers_kept_for_the_ttl(server: DnsServer) -> None:
    clock = Clock()
    cache = NameCache(clock)
    r = Resolver((("127.0.0.1", server.port),), ipv6=False)

    async def twice(step: float) -> None:
        await cache.resolve(r, "app.test", 5)
        clock.now += step
        await cache.resolve(r, "APP.test", 5)

    run(twice(59))
    assert server.queries == [("app.test", "A")]  # within the TTL: no new query
    clock.now += 2
    run(cache.resolve(r, "app.test", 5))
    assert len(server.queries) == 2  # the TTL passed


def test_valid_overrides_the_ttl(server: DnsServer) -> None:
    clock = Clock()
    cache = NameCache(clock)
    r = Resolver((("127.0.0.1", server.port),), valid=5, ipv6=False)
    run(cache.resolve(r, "app.test", 5))
    clock.now += 4
    run(cache.resolve(r, "app.test", 5))
    assert len(server.queries) == 1
    clock.now += 2
    run(cache.resolve(r, "app.test", 5))
    assert len(server.queries) == 2


def test_failures_are_not_kept(server: DnsServer) -> None:
    cache = NameCache()
    r = Resolver((("127.0.0.1", server.port),), ipv6=False)
    for _ in range(2):
        with pytest.raises(ResolveFailed, match=r"\(3: Host not found\)"):
            run(cache.resolve(r, "missing.test", 5))
    assert server.queries == [("missing.test", "A")] * 2
    with pytest.raises(ResolveFailed, match=r"^fail.test could not be resolved \(2: Server failure\)$"):
        run(cache.resolve(r, "fail.test", 5))


def test_timeout() -> None:
    # a server that never answers: resolver_timeout, then nginx's 110
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        r = Resolver((("127.0.0.1", silent.getsockname()[1]),))
        with pytest.raises(ResolveFailed) as failed:
            run(NameCache().resolve(r, "x.test", 0.3))
        assert failed.value.code == TIMED_OUT
        assert str(failed.value) == "x.test could not be resolved (110: Operation timed out)"
    finally:
        silent.close()


def test_the_next_server_is_asked_when_one_is_silent(server: DnsServer) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        r = Resolver((("127.0.0.1", silent.getsockname()[1]), ("127.0.0.1", server.port)), ipv6=False)
        cache = NameCache(resend=0.2)  # nginx resends every 5 s
        assert sorted(run(cache.resolve(r, "app.test", 5))) == ["127.0.0.1", "127.0.0.2"]
        assert server.queries == [("app.test", "A")]  # after the silent one
    finally:
        silent.close()


def test_concurrent_lookups_share_one_query(server: DnsServer) -> None:
    cache = NameCache()
    r = Resolver((("127.0.0.1", server.port),), ipv6=False)

    async def many() -> list[list[str]]:
        return await asyncio.gather(*(cache.resolve(r, "app.test", 5) for _ in range(5)))

    assert [sorted(found) for found in run(many())] == [["127.0.0.1", "127.0.0.2"]] * 5
    assert server.queries == [("app.test", "A")]


def test_strerror() -> None:
    assert [strerror(c) for c in (1, 2, 3, 4, 5, 110, 9)] == [
        "Format error", "Server failure", "Host not found", "Unimplemented",
        "Operation refused", "Operation timed out", "Unknown error",
    ]  # fmt: skip


def _load(tmp_path: Path, http: str) -> Config:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "events {}\nhttp {\n" + http + "\nserver { listen 127.0.0.1:8080; location / { proxy_pass http://$host; } }\n}\n"
    )
    return load_config(str(conf))


def test_reading(tmp_path: Path) -> None:
    config = _load(tmp_path, "resolver 127.0.0.1 [::1]:5353 127.0.0.2:54 valid=10s ipv6=off;\nresolver_timeout 3s;")
    settings = config.servers[0].locations[0].proxy
    assert settings.resolver == Resolver((("127.0.0.1", 53), ("::1", 5353), ("127.0.0.2", 54)), 10.0, False)
    assert settings.resolver_timeout == 3.0
    default = _load(tmp_path, "").servers[0].locations[0].proxy
    assert default.resolver is None and default.resolver_timeout == 30.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("resolver valid=10s;", "no name servers defined"),
        ("resolver 127.0.0.1 valid=x;", "invalid parameter: valid=x"),
        ("resolver 127.0.0.1 ipv6=maybe;", "invalid parameter: ipv6=maybe"),
        ("resolver 127.0.0.1:abc;", 'invalid port in resolver "127.0.0.1:abc"'),
        ("resolver 127.0.0.1; resolver 127.0.0.2;", '"resolver" directive is duplicate'),
        ("resolver_timeout x;", '"resolver_timeout" directive invalid value'),
    ],
)
def test_reading_errors(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, line)
