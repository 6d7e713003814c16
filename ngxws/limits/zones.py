"""Each ``limit_*_zone`` as memory every worker shares, with a lock.

Like nginx's ``ngx_shared_memory_add()`` zones, these are created by the
master before it forks (a memfd of the zone's configured size, mapped
shared), so every worker -- and every worker of a later reload -- sees the
same table.  The lock is a POSIX record lock on the memfd, as for the
counters (``accounting/counters.py``): taken once per request per zone,
never held across an ``await``, and dropped by the kernel if its holder
dies (nginx's ``ngx_shmtx`` needs the master to force-unlock it then).

Reload (nginx's ``ngx_init_cycle()``): a zone with the same name, kind and
size as one of the running config is reused, state and all -- unless its key
changed, which nginx refuses (``ZoneKeyChanged``); a zone whose size changed
starts empty.  The rate is the new config's (it lives in each worker, not in
the table, as nginx's ``ctx->rate``).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import tempfile
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ngxws.config.limits import LimitZone
from ngxws.config.model import Config
from ngxws.limits.table import ConnTable, ReqTable

__all__ = ["SharedZone", "LimitZones", "ZoneKeyChanged"]


class ZoneKeyChanged(ValueError):
    """A reload would give a running zone another key (nginx refuses it)."""


class _Memory:
    """A memfd of ``size`` bytes mapped shared; closed when no zone uses it."""

    def __init__(self, name: str, size: int) -> None:
        memfd_create = getattr(os, "memfd_create", None)
        if memfd_create is not None:
            self.fd: int = memfd_create(f"ngxws-zone-{name}", 0)  # workers fork, never exec
        else:  # pragma: no cover - non-Linux
            self.fd = os.dup(tempfile.TemporaryFile().fileno())
        os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size)
        self.buf = memoryview(self.map)
        weakref.finalize(self, _close, self.fd)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class SharedZone:
    """One zone: its config, its table over the shared memory, its lock."""

    def __init__(self, spec: LimitZone, memory: _Memory | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.memory = memory if memory is not None else _Memory(spec.name, spec.size)
        self.req: ReqTable | None = None
        self.conn: ConnTable | None = None
        if spec.kind == "req":
            self.req = ReqTable(self.memory.buf, spec.size, spec.rate)
        else:
            self.conn = ConnTable(self.memory.buf, spec.size)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """The zone's mutex (``ngx_shmtx_lock(&ctx->shpool->mutex)``)."""
        fcntl.lockf(self.memory.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self.memory.fd, fcntl.LOCK_UN)


class LimitZones(Mapping[str, SharedZone]):
    """The zones of one config, by name."""

    def __init__(self, zones: Mapping[str, SharedZone]) -> None:
        self._zones = dict(zones)

    @classmethod
    def for_config(cls, config: Config, running: LimitZones | None = None) -> LimitZones:
        """Create ``config``'s zones, reusing ``running``'s where nginx would."""
        zones: dict[str, SharedZone] = {}
        for spec in config.limit_zones:
            old = running.get(spec.name) if running is not None else None
            if old is not None and old.spec.kind == spec.kind and old.spec.size == spec.size:
                if old.spec.key != spec.key:
                    # ngx_http_limit_req_init_zone() / ngx_http_limit_conn_init_zone()
                    what = "limit_req" if spec.kind == "req" else "limit_conn_zone"
                    raise ZoneKeyChanged(
                        f'{what} "{spec.name}" uses the "{spec.key}" key '
                        f'while previously it used the "{old.spec.key}" key'
                    )
                zones[spec.name] = SharedZone(spec, old.memory)
            else:
                zones[spec.name] = SharedZone(spec)
        return cls(zones)

    def __getitem__(self, name: str) -> SharedZone:
        return self._zones[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._zones)

    def __len__(self) -> int:
        return len(self._zones)
