"""``map`` blocks evaluated per request (ngx_http_map_module), without I/O.

nginx lower-cases the plain keys when it builds the hash and the value it
looks up (ngx_http_map_find(): ngx_hash_strlow), so plain keys match without
regard to case; ngx_strlow changes ASCII letters only, and keys are byte text (config text is bytes,
``ngxws.config.wiretext``), so only A-Z are lowered here too; regex keys
(``~`` case-sensitive, ``~*`` caseless) are tried in config order after the
plain ones; otherwise ``default``.  Values may hold variables; they are
rendered by the caller.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ngxws.config.model import Map
from ngxws.config.pcre import compile_pcre

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _lower(key: str) -> str:
    """ngx_strlow(): A-Z only (``str.lower`` would change the bytes of é)."""
    return key.translate(_ASCII_LOWER)


@dataclass
class CompiledMap:
    """One map, ready for look-ups."""

    expression: str
    hostnames: bool
    default: str
    exact: dict[str, str] = field(default_factory=dict)
    regexes: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    leading: list[tuple[str, str]] = field(default_factory=list)  # hostnames: "*.x" / ".x"
    trailing: list[tuple[str, str]] = field(default_factory=list)  # hostnames: "x.*"

    @classmethod
    def of(cls, m: Map) -> CompiledMap:
        out = cls(m.expression, m.hostnames, m.default)
        for key, value in m.entries:
            if key.startswith("~*"):
                out.regexes.append((compile_pcre(key[2:], True), value))
            elif key.startswith("~"):
                out.regexes.append((compile_pcre(key[1:]), value))
            elif m.hostnames and key.startswith(("*.", ".")):
                out.leading.append((_lower(key).lstrip("*"), value))
                if key.startswith("."):
                    out.exact.setdefault(_lower(key[1:]), value)
            elif m.hostnames and key.endswith(".*"):
                out.trailing.append((_lower(key[:-1]), value))
            else:
                out.exact.setdefault(_lower(key), value)
        out.leading.sort(key=lambda p: -len(p[0]))
        out.trailing.sort(key=lambda p: -len(p[0]))
        return out

    def lookup(self, value: str) -> tuple[str, tuple[str, ...], dict[str, str]]:
        """The (unrendered) result for ``value`` and, for a regex key, its
        captures (``$1``..) and named captures (``$name``)."""
        if self.hostnames and value.endswith("."):
            value = value[:-1]
        low = _lower(value)
        hit = self.exact.get(low)
        if hit is not None:
            return hit, (), {}
        if self.hostnames:
            for suffix, v in self.leading:
                if low.endswith(suffix):
                    return v, (), {}
            for prefix, v in self.trailing:
                if low.startswith(prefix):
                    return v, (), {}
        for rx, v in self.regexes:
            m = rx.search(value)
            if m is not None:
                named = {k: g or "" for k, g in m.groupdict().items()}
                return v, tuple(g or "" for g in m.groups()), named
        return self.default, (), {}


class CompiledGeo(CompiledMap):
    """A ``geo`` block: the longest network holding the address (ranges:
    the last range holding it, as later ranges overwrite earlier ones in
    ngx_http_geo_add_range()), else ``default``; an address that does not
    parse finds the default (nginx looks up 255.255.255.255)."""

    networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]
    ranges: list[tuple[int, int, str]]

    @classmethod
    def of_geo(cls, m: Map) -> CompiledGeo:
        out = cls(m.expression, False, m.default)
        out.networks, out.ranges = [], []
        for key, value in m.entries:
            if m.geo == "ranges":
                low, _, high = key.partition("-")
                out.ranges.append((int(ipaddress.IPv4Address(low)), int(ipaddress.IPv4Address(high)), value))
            else:
                out.networks.append((ipaddress.ip_network(key), value))
        out.networks.sort(key=lambda p: -p[0].prefixlen)
        out.ranges.reverse()
        return out

    def lookup(self, value: str) -> tuple[str, tuple[str, ...], dict[str, str]]:
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            return self.default, (), {}
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if self.ranges:
            if isinstance(addr, ipaddress.IPv4Address):
                n = int(addr)
                for low, high, v in self.ranges:
                    if low <= n <= high:
                        return v, (), {}
            return self.default, (), {}
        for net, v in self.networks:
            if addr.version == net.version and addr in net:
                return v, (), {}
        return self.default, (), {}


class CompiledSplit(CompiledMap):
    """A ``split_clients`` block: the first share whose bound the
    MurmurHash2 of the value stays under (a ``*`` line takes any), else
    empty (ngx_http_split_clients_variable)."""

    split: tuple[tuple[int, str], ...]

    @classmethod
    def of_split(cls, m: Map) -> CompiledSplit:
        out = cls(m.expression, False, "")
        out.split = m.split
        return out

    def lookup(self, value: str) -> tuple[str, tuple[str, ...], dict[str, str]]:
        h = murmur_hash2(value.encode("latin-1", "replace"))
        for bound, v in self.split:
            if h < bound or bound == 0:
                return v, (), {}
        return "", (), {}


def murmur_hash2(data: bytes) -> int:
    """ngx_murmur_hash2() (Austin Appleby's MurmurHash2, seed 0, little endian)."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    n = len(data)
    h = n & mask
    end = n - n % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    rest = n - end
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    return h ^ (h >> 15)


def compile_maps(maps: tuple[Map, ...]) -> dict[str, CompiledMap]:
    """Variable name (without ``$``) -> compiled map (or geo, or
    split_clients); a later one of the same name replaces an earlier one,
    as nginx's variable table does."""
    return {
        m.variable: CompiledSplit.of_split(m) if m.split else CompiledGeo.of_geo(m) if m.geo else CompiledMap.of(m)
        for m in maps
    }
