"""Buffered ws_log files: one write per flush, nothing lost across logrotate."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ngxws.sinks.logfile import MAX_BUFFER, LogFile, LogFiles


class CountingWrite:
    """Stands in for os.write: counts calls, optionally writes short."""

    def __init__(self, limit: int | None = None) -> None:
        self.calls = 0
        self.limit = limit
        self.real = os.write

    def __call__(self, fd: int, data: bytes | memoryview) -> int:
        self.calls += 1
        if self.limit is not None:
            data = data[: self.limit]
        return self.real(fd, data)


def test_append_costs_no_syscall_flush_costs_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ws.log"
    f = LogFile(str(path))
    write = CountingWrite()
    monkeypatch.setattr(os, "write", write)
    for i in range(1000):
        f.append(f"line {i}")
    assert write.calls == 0 and path.read_bytes() == b""
    assert f.pending == sum(len(f"line {i}") + 1 for i in range(1000))
    f.flush()
    assert write.calls == 1 and f.pending == 0
    assert path.read_text().splitlines() == [f"line {i}" for i in range(1000)]
    f.flush()  # nothing buffered: no syscall
    assert write.calls == 1
    f.close()


def test_partial_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ws.log"
    f = LogFile(str(path))
    write = CountingWrite(limit=7)
    monkeypatch.setattr(os, "write", write)
    lines = [f"frame {i} from client" for i in range(50)]
    for line in lines:
        f.append(line)
    f.flush()
    assert path.read_text() == "".join(line + "\n" for line in lines)
    assert write.calls > 100


def test_appends_to_existing_file_and_creates_with_0644(tmp_path: Path) -> None:
    path = tmp_path / "ws.log"
    path.write_text("old\n")
    f = LogFile(str(path))
    f.append("new")
    f.close()
    assert path.read_text() == "old\nnew\n"
    fresh = tmp_path / "fresh.log"
    LogFile(str(fresh)).close()
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o644 & ~umask


def test_open_failure_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        LogFile(str(tmp_path / "no" / "such" / "dir.log"))


def test_big_buffer_flushes_at_once(tmp_path: Path) -> None:
    path = tmp_path / "ws.log"
    f = LogFile(str(path))
    line = "x" * 1023
    n = MAX_BUFFER // 1024
    for _ in range(n):
        f.append(line)
    assert path.stat().st_size == 0  # exactly MAX_BUFFER: still buffered
    f.append("one more")
    assert path.stat().st_size == MAX_BUFFER + len("one more\n")
    assert f.pending == 0
    f.close()


def test_reopen_after_rename_loses_no_line(tmp_path: Path) -> None:
    path = tmp_path / "ws.log"
    rotated = tmp_path / "ws.log.1"
    f = LogFile(str(path))
    f.append("a1")
    f.flush()
    f.append("a2")  # still buffered when logrotate renames the file
    os.rename(path, rotated)
    f.append("a3")
    f.reopen()  # SIGUSR1
    f.append("b1")
    f.append("b2")
    f.close()
    assert rotated.read_text() == "a1\na2\na3\n"
    assert path.read_text() == "b1\nb2\n"


def test_reopen_failure_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "ws.log"
    rotated = tmp_path / "ws.log.1"
    f = LogFile(str(path))
    f.append("before")
    os.rename(path, rotated)
    path.mkdir()  # now the path cannot be opened for writing
    with pytest.raises(OSError):
        f.reopen()
    f.append("after")
    f.close()
    assert rotated.read_text() == "before\nafter\n"


def test_two_workers_appending_to_one_file_never_split_lines(tmp_path: Path) -> None:
    path = str(tmp_path / "ws.log")
    w1, w2 = LogFile(path), LogFile(path)  # two processes' fds, both O_APPEND
    for i in range(100):
        w1.append(f"w1 {i}")
        w2.append(f"w2 {i}")
        if i % 10 == 9:
            w1.flush()
            w2.flush()
    w1.close()
    w2.close()
    lines = Path(path).read_text().splitlines()
    assert sorted(lines) == sorted(
        [f"w1 {i}" for i in range(100)] + [f"w2 {i}" for i in range(100)]
    )
    assert [x for x in lines if x.startswith("w1")] == [f"w1 {i}" for i in range(100)]


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    f = LogFile(str(tmp_path / "ws.log"))
    f.append("x")
    f.close()
    f.close()
    assert f.closed
    assert (tmp_path / "ws.log").read_text() == "x\n"
    with pytest.raises(ValueError):
        f.append("late")
    with pytest.raises(ValueError):
        f.reopen()


def test_stdout_and_stderr_use_fds_1_and_2(capfd: pytest.CaptureFixture[str]) -> None:
    out, err = LogFile("/dev/stdout"), LogFile("/dev/stderr")
    assert (out.fileno(), err.fileno()) == (1, 2)
    out.append("to stdout")
    err.append("to stderr")
    out.reopen()  # just flushes
    err.close()  # flushes, leaves fd 2 open
    out.close()
    os.fstat(1)
    os.fstat(2)
    captured = capfd.readouterr()
    assert captured.out == "to stdout\n"
    assert captured.err == "to stderr\n"


def test_write_errors_drop_lines_and_do_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    f = LogFile("/dev/full")
    f.append("lost")
    f.flush()  # ENOSPC
    assert f.dropped_bytes == len("lost\n")
    assert "/dev/full" in caplog.text
    f.append("still usable")
    f.close()


def _through_a_full_pipe(monkeypatch: pytest.MonkeyPatch, fill: Callable[[LogFile], bytes]) -> None:
    """``fill`` buffers more than a pipe holds (returning the bytes it
    buffered); the first flush fills the non-blocking pipe, the rest stays
    buffered and goes out, in order, as the reader drains it."""
    r, w = os.pipe()
    os.set_blocking(w, False)
    f = LogFile("/dev/stdout")
    monkeypatch.setattr(f, "_fd", w)
    try:
        expected = fill(f)
        f.flush()  # fills the pipe; the rest stays buffered
        assert f.pending > 0
        got = b""
        while f.pending:
            got += os.read(r, 1 << 20)
            f.flush()
        got += os.read(r, 1 << 20)
        assert got == expected
    finally:
        os.close(r)
        os.close(w)


def test_would_block_keeps_the_rest_for_next_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    line = "é" * 100  # two bytes each: a short write may cut one in half
    n = 65536 // 201 + 50

    def fill(f: LogFile) -> bytes:
        for _ in range(n):
            f.append(line)
        return ((line + "\n") * n).encode()

    _through_a_full_pipe(monkeypatch, fill)


def test_bytes_round_trip_through_surrogateescape(tmp_path: Path) -> None:
    raw = b"GET /caf\xc3\xa9 \xff\xfe HTTP/1.1"
    f = LogFile(str(tmp_path / "ws.log"))
    f.append(raw.decode("utf-8", "surrogateescape"))
    f.close()
    assert (tmp_path / "ws.log").read_bytes() == raw + b"\n"


def test_registry_shares_one_file_per_path(tmp_path: Path) -> None:
    files = LogFiles()
    a = files.get(str(tmp_path / "a.log"))
    assert files.get(str(tmp_path / "a.log")) is a
    b = files.get(str(tmp_path / "b.log"))
    assert b is not a and len(files) == 2 and str(tmp_path / "a.log") in files
    a.append("server one")
    files.get(str(tmp_path / "a.log")).append("server two")
    b.append("b")
    files.flush_all()
    assert (tmp_path / "a.log").read_text() == "server one\nserver two\n"
    assert (tmp_path / "b.log").read_text() == "b\n"


def test_registry_reopen_all_reports_failures_and_goes_on(tmp_path: Path) -> None:
    files = LogFiles()
    a = files.get(str(tmp_path / "a.log"))
    b = files.get(str(tmp_path / "b.log"))
    a.append("a1")
    b.append("b1")
    os.rename(tmp_path / "a.log", tmp_path / "a.log.1")
    os.rename(tmp_path / "b.log", tmp_path / "b.log.1")
    (tmp_path / "a.log").mkdir()
    errors = files.reopen_all()
    assert [p for p, _ in errors] == [str(tmp_path / "a.log")]
    a.append("a2")
    b.append("b2")
    files.close_all()
    assert len(files) == 0
    assert (tmp_path / "a.log.1").read_text() == "a1\na2\n"  # kept the old fd
    assert (tmp_path / "b.log.1").read_text() == "b1\n"
    assert (tmp_path / "b.log").read_text() == "b2\n"


def test_registry_close_all_flushes_and_reopens_on_next_get(tmp_path: Path) -> None:
    files = LogFiles()
    a = files.get(str(tmp_path / "a.log"))
    a.append("x")
    files.close_all()
    assert a.closed and (tmp_path / "a.log").read_text() == "x\n"
    assert files.get(str(tmp_path / "a.log")) is not a


def test_extend_is_append_per_line(tmp_path: Path) -> None:
    path = tmp_path / "ws.log"
    log = LogFile(str(path))
    log.extend(["a", "bb"])
    log.append("c")
    assert log.pending == len("a\nbb\nc\n")
    log.extend([])
    log.flush()
    assert path.read_text() == "a\nbb\nc\n"
    log.extend(["x" * 1023] * (MAX_BUFFER // 1024 + 1))  # past MAX_BUFFER: written at once
    assert log.pending == 0 and path.stat().st_size > MAX_BUFFER
    log.close()


# --- encoded lines (FrameTracker.log's, through write_lines) ------------------


class CountingWritev:
    """Stands in for os.writev: counts calls, optionally writes short."""

    def __init__(self, limit: int | None = None) -> None:
        self.calls = 0
        self.limit = limit

    def __call__(self, fd: int, parts: list[bytes]) -> int:
        self.calls += 1
        data = b"".join(parts)
        return os.write(fd, data if self.limit is None else data[: self.limit])


def test_encoded_and_text_lines_go_out_in_one_writev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ws.log"
    f = LogFile(str(path))
    writev = CountingWritev()
    monkeypatch.setattr(os, "writev", writev)
    f.append("open")
    for i in range(5):
        f.write_lines(f"frame {i}a\nframe {i}b\n".encode())
    f.append("close")
    f.flush()
    assert writev.calls == 1 and f.pending == 0
    expected = ["open", *(f"frame {i}{s}" for i in range(5) for s in "ab"), "close"]
    assert path.read_text().splitlines() == expected
    f.close()


def test_partial_writev_is_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ws.log"
    f = LogFile(str(path))
    monkeypatch.setattr(os, "writev", CountingWritev(limit=11))
    write = CountingWrite(limit=5)
    monkeypatch.setattr(os, "write", write)
    for i in range(20):
        f.write_lines(f"frame {i}\n".encode())
        f.append(f"text {i}")
    f.flush()
    assert path.read_text() == "".join(f"frame {i}\ntext {i}\n" for i in range(20))
    assert write.calls > 10


def test_more_chunks_than_writev_takes(tmp_path: Path) -> None:
    from ngxws.sinks import logfile

    path = tmp_path / "ws.log"
    f = LogFile(str(path))
    n = logfile._IOV_MAX + 10
    for i in range(n):
        f.write_lines(b"%d\n" % i)
    f.flush()
    assert path.read_bytes() == b"".join(b"%d\n" % i for i in range(n))
    f.close()


def test_would_block_keeps_encoded_chunks_for_next_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    chunk = b"x" * 999 + b"\n"
    n = 65536 // len(chunk) + 30

    def fill(f: LogFile) -> bytes:
        for i in range(n):
            f.write_lines(chunk)
            f.append(f"t{i}")
        return b"".join(chunk + b"t%d\n" % i for i in range(n))

    _through_a_full_pipe(monkeypatch, fill)


def test_syslog_sink_sends_a_datagram_per_encoded_line(tmp_path: Path) -> None:
    import socket

    from ngxws.sinks.syslog import SyslogSink

    addr = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(addr)
    try:
        sink = SyslogSink(f"syslog:server=unix:{addr},tag=ws")
        sink.write_lines("one\ntwo é\n".encode())
        sink.flush()
        got = [server.recv(4096) for _ in range(2)]
        assert [g.rsplit(b": ", 1)[1] for g in got] == [b"one", "two é".encode()]
        sink.close()
    finally:
        server.close()
