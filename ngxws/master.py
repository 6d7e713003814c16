"""The master process: nginx's process model, for ngxws.

Theory of operation
-------------------

ngxws always runs as one master and ``worker_processes`` workers, even for
one worker, so there is one code path.  The master serves nothing.  It

1. checks the config the way starting would use it (``preflight``), binds
   the listening sockets (``ListenSockets``: one SO_REUSEPORT socket per
   worker and address), creates the shared counters and writes the pid file
   -- all before the first fork, so a worker inherits them and any error is
   reported once, like nginx's ``[emerg]``, with exit code 1;
2. forks the workers: each gets a counter slot, the sockets of its index and
   a channel (socketpair) to the master, and runs ``run_worker_process``;
3. waits in a plain ``selectors`` loop (never an asyncio loop, so no loop
   state is ever forked) for signals -- delivered as bytes through
   ``signal.set_wakeup_fd`` -- and for workers' ``READY`` messages, and
   acts on them.

Signals, with nginx's meanings
------------------------------

- ``HUP``: reload.  The config is re-read and checked; on any error the
  reason is logged and the running config stays.  Otherwise a new
  *generation* of workers starts on the new config.  When all of them are
  ready, the old workers are told to drain: they stop accepting and keep
  their open websocket tunnels until those end.  Counter slots are reused,
  never cleared, so the page's totals continue.
- ``USR1``: reopen the error log here and every log file in every worker.
- ``QUIT``: graceful stop (workers send close 1001 to websocket clients).
- ``TERM``/``INT``: fast stop.  ``TERM`` during a graceful stop hurries it.
- ``CHLD``: a worker exited.  Its slot's ``active`` count is cleared (its
  tunnels died with it) and, unless the master asked it to exit, a new
  worker takes its index -- and with it its listening sockets, which the
  master kept open, so connections queued meanwhile are not lost.

Every wait is bounded: a stop kills workers that outlive ``SHUTDOWN_GRACE``
plus a margin; a reload whose new workers are not ready in
``READY_TIMEOUT`` is abandoned and the old generation keeps serving.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ngxws import __version__, sdnotify
from ngxws.accounting.breakdown import labels as breakdown_labels
from ngxws.accounting.counters import MAX_SLOTS, SharedCounters
from ngxws.channel import READY, Command, channel_pair
from ngxws.channel import send as channel_send
from ngxws.config.model import Config
from ngxws.errorlog import ALERT, EMERG, NOTICE, check_error_log, reopen_error_log, setup_error_log
from ngxws.limits.zones import LimitZones, ZoneKeyChanged
from ngxws.listen_sockets import ListenSockets
from ngxws.listeners import BindError, listener_table, tls_context
from ngxws.sinks.logfile import LogFiles
from ngxws.worker import (
    EXIT_FATAL,
    SHUTDOWN_GRACE,
    WORKER_SIGNALS,
    run_worker_process,
    ws_log_path,
)

log = logging.getLogger("ngxws")

READY_TIMEOUT = 10.0  # a reload's new workers must be accepting within this
STOP_MARGIN = 3.0  # past SHUTDOWN_GRACE, workers still alive at a stop are killed
KILL_WAIT = 2.0  # after SIGKILL, how long to wait to reap before giving up
MIN_LIFETIME = 1.0  # a worker that dies younger than this is respawned after...
RESPAWN_DELAY = 1.0  # ...this long, so a crash loop cannot spin the CPU
IDLE_TICK = 1.0  # the loop wakes at least this often (reaping is also done on SIGCHLD)

MASTER_SIGNALS = (
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGCHLD,
)

_STDIO_PATHS = ("/dev/stdout", "/dev/stderr", "/dev/fd/1", "/dev/fd/2")


def _warn_unenforced(config: Config) -> None:
    """Access control the operator allowed to go unenforced, blocks not
    served, directives ignored where nginx acts (``start_warnings``): said
    at every start and reload, in the error log."""
    from ngxws.config.report import start_warnings

    for warning in start_warnings(config):
        log.warning(warning)


def worker_count(config: Config) -> int:
    """``worker_processes`` (``auto`` is already the CPU count); 0 runs one."""
    return max(1, config.worker_processes)


def preflight(config: Config) -> list[str]:
    """What would stop ``config`` from starting, as nginx's ``[emerg]`` texts.

    The loader has checked the syntax; this checks what needs the machine:
    that log files can be opened and TLS contexts built (certificates, keys,
    ciphers).  Done in the master before anything forks (at start and at
    every reload) so that a bad file is one clear message, not workers
    dying in a loop.
    """
    problems: list[str] = []
    try:
        check_error_log(config.error_log)
    except OSError as exc:
        problems.append(f'open() "{config.error_log}" failed ({exc.errno}: {exc.strerror})')
    seen: set[str] = set()
    for server in config.servers:
        path = ws_log_path(config, server)
        if path is None or path in seen or path in _STDIO_PATHS:
            continue
        seen.add(path)
        try:
            LogFiles().get(path).close()  # a file, or syslog:... (resolved now, as nginx does)
        except OSError as exc:
            problems.append(f'open() "{path}" failed ({exc.errno}: {exc.strerror})')
    for listen, vhosts, servers in listener_table(config).values():
        if not listen.ssl:
            continue
        try:
            tls_context(servers, vhosts)
        except Exception as exc:  # OpenSSL's refusals come in several types
            problems.append(str(exc))
    return problems


@dataclass(eq=False)
class Generation:
    """The workers started for one config (the first, or one reload's)."""

    number: int
    config: Config
    sockets: ListenSockets
    workers: int
    by_index: dict[int, WorkerProcess] = field(default_factory=dict)
    zones: LimitZones | None = None  # limit_*_zone memory, created before the first fork


@dataclass(eq=False)
class WorkerProcess:
    pid: int
    index: int
    slot: int
    generation: Generation
    channel: socket.socket
    started: float
    ready: bool = False
    exiting: bool = False  # the master asked it to exit: do not respawn (nginx's "exiting")
    channel_open: bool = True


class Master:
    """Runs until stopped; ``run()`` returns the process exit code."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.counters: SharedCounters | None = None
        self.current: Generation | None = None
        self.pending: Generation | None = None
        self.pending_deadline = 0.0
        self.processes: dict[int, WorkerProcess] = {}
        self.respawns: list[tuple[float, Generation, int]] = []
        self.stopping = False
        self.graceful = False
        self.stop_deadline = 0.0
        self.killed_at: float | None = None
        self.exit_code = 0
        self.pid_path: str | None = None
        self._generations = 0
        self._announced_ready = False
        self._selector = selectors.DefaultSelector()
        self._wakeup_r, self._wakeup_w = os.pipe()
        os.set_blocking(self._wakeup_r, False)
        os.set_blocking(self._wakeup_w, False)
        self._handlers: dict[int, Callable[[], None]] = {
            signal.SIGHUP: self.handle_sighup,
            signal.SIGUSR1: self.handle_sigusr1,
            signal.SIGQUIT: self.handle_sigquit,
            signal.SIGTERM: self.handle_sigterm,
            signal.SIGINT: self.handle_sigint,
            signal.SIGCHLD: self.handle_sigchld,
        }

    # -- start and the loop ---------------------------------------------------

    def run(self) -> int:
        config = self.config
        try:
            setup_error_log(config.error_log, config.error_log_level)
        except OSError as exc:
            print(
                f'ngxws: [emerg] open() "{config.error_log}" failed ({exc.errno}: {exc.strerror})',
                file=sys.stderr,
            )
            return 1
        problems = preflight(config)
        for problem in problems:
            log.log(EMERG, problem)
        if problems:
            return 1
        _warn_unenforced(config)
        workers = worker_count(config)
        try:
            sockets = ListenSockets.bind(config, workers)
        except BindError as exc:
            log.log(EMERG, str(exc))
            return 1
        self.counters = SharedCounters(max(MAX_SLOTS, 4 * workers))
        try:
            zones = LimitZones.for_config(config)
        except OSError as exc:  # ngx_shm_alloc() failing
            log.log(EMERG, f"cannot map a limit_*_zone ({exc.errno}: {exc.strerror})")
            sockets.close_unused(None)
            return 1
        if config.pid_path:
            try:
                _write_pid(config.pid_path)
            except OSError as exc:
                log.log(EMERG, f'open() "{config.pid_path}" failed ({exc.errno}: {exc.strerror})')
                sockets.close_unused(None)
                return 1
            self.pid_path = config.pid_path
        self._install_signals()
        log.log(NOTICE, f"ngxws/{__version__}")
        log.log(NOTICE, "start worker processes")
        try:
            self.current = self._new_generation(config, sockets, workers, zones)
            self._loop()
        except BaseException as exc:
            log.critical(f"master process failed: {exc!r}")
            self._emergency_stop()
            self.exit_code = 1
        finally:
            self._cleanup()
        return self.exit_code

    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self._wakeup_w, warn_on_full_buffer=False)
        for sig in MASTER_SIGNALS:
            # The handler does nothing: the C-level handler has already written
            # the signal number to the wakeup pipe, which the loop reads.
            signal.signal(sig, _ignore_in_python)
        self._selector.register(self._wakeup_r, selectors.EVENT_READ, self._on_signals)

    def _loop(self) -> None:
        while True:
            for key, _events in self._selector.select(self._timeout()):
                callback: Callable[[], None] = key.data
                callback()
            self._reap()
            self._tick()
            if not self.processes:
                if self.stopping:
                    return
                if not self.respawns:
                    log.log(ALERT, "no worker processes left, exiting")
                    self.exit_code = 1
                    return

    def _timeout(self) -> float:
        now = time.monotonic()
        deadlines = [now + IDLE_TICK]
        if self.pending is not None:
            deadlines.append(self.pending_deadline)
        if self.stopping:
            deadlines.append(self.stop_deadline)
        deadlines.extend(at for at, _gen, _index in self.respawns)
        return max(0.0, min(deadlines) - now)

    def _tick(self) -> None:
        now = time.monotonic()
        if self.pending is not None and now >= self.pending_deadline:
            self._abandon_pending(f"new worker processes not ready after {READY_TIMEOUT:g}s")
        due = [r for r in self.respawns if r[0] <= now]
        if due:
            self.respawns = [r for r in self.respawns if r[0] > now]
            for _at, gen, index in due:
                if (
                    not self.stopping
                    and gen in (self.current, self.pending)
                    and index not in gen.by_index
                ):
                    self._spawn(gen, index)
        if self.stopping and self.processes and now >= self.stop_deadline:
            if self.killed_at is None:
                for proc in self.processes.values():
                    log.log(ALERT, f"worker process {proc.pid} did not exit in time, killing it")
                    _kill(proc.pid, signal.SIGKILL)
                self.killed_at = now
                self.stop_deadline = now + KILL_WAIT
            else:
                log.log(ALERT, "worker processes could not be reaped, exiting anyway")
                self.processes.clear()

    # -- workers ----------------------------------------------------------------

    def _new_generation(
        self, config: Config, sockets: ListenSockets, workers: int, zones: LimitZones
    ) -> Generation:
        self._generations += 1
        gen = Generation(self._generations, config, sockets, workers, zones=zones)
        assert self.counters is not None
        self.counters.register(breakdown_labels(config))  # before the fork: every worker knows them
        for index in range(workers):
            self._spawn(gen, index)
        return gen

    def _spawn(self, gen: Generation, index: int) -> None:
        assert self.counters is not None
        try:
            slot = self.counters.allocate_slot()
        except RuntimeError as exc:
            log.log(ALERT, f"cannot start a worker process: {exc}")
            return
        master_end, worker_end = channel_pair()
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            master_end.close()
            worker_end.close()
            self.counters.retire_slot(slot)
            log.log(
                ALERT,
                f"fork() failed while spawning a worker process ({exc.errno}: {exc.strerror})",
            )
            return
        if pid == 0:  # the worker; never returns into the master's code
            code = 1
            try:
                master_end.close()
                self._close_in_child(gen, index)
                code = run_worker_process(
                    gen.config,
                    self.counters,
                    slot,
                    gen.sockets.for_worker(index),
                    worker_end,
                    gen.zones,
                )
            except BaseException as exc:  # a child must always reach _exit
                try:
                    log.critical(f"worker process failed: {exc!r}")
                except BaseException:
                    pass
            finally:
                _flush_and_exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        worker_end.close()
        proc = WorkerProcess(pid, index, slot, gen, master_end, time.monotonic())
        self.processes[pid] = proc
        gen.by_index[index] = proc
        self._selector.register(master_end, selectors.EVENT_READ, lambda: self._on_channel(proc))
        log.log(NOTICE, f"start worker process {pid}")

    def _close_in_child(self, gen: Generation, index: int) -> None:
        """Drop every master-only fd in a new worker.

        Other workers' channel ends must go, or a worker would never see its
        master's death as end-of-file; listening sockets of other indices
        must go, or one closed by the master would stay open here, unserved,
        with connections queued in it.
        """
        self._selector.close()
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)
        for proc in self.processes.values():
            proc.channel.close()
        mine = {id(s) for s in gen.sockets.for_worker(index).values()}
        for held in (self.current, self.pending, gen):
            if held is None:
                continue
            for sock in held.sockets:
                if id(sock) not in mine:
                    sock.close()

    def _on_channel(self, proc: WorkerProcess) -> None:
        try:
            data = proc.channel.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop_channel(proc)  # it is exiting; the reap does the rest
            return
        if READY in data and not proc.ready:
            proc.ready = True
            self._worker_ready(proc)

    def _drop_channel(self, proc: WorkerProcess) -> None:
        if proc.channel_open:
            proc.channel_open = False
            self._selector.unregister(proc.channel)
            proc.channel.close()

    def _worker_ready(self, proc: WorkerProcess) -> None:
        gen = proc.generation
        all_ready = len(gen.by_index) == gen.workers and all(p.ready for p in gen.by_index.values())
        if gen is self.pending and all_ready:
            self._switch_to_pending()
        elif gen is self.current and all_ready and not self._announced_ready:
            self._announced_ready = True
            sdnotify.notify("READY=1", f"STATUS=serving with {gen.workers} worker processes")

    def _tell(self, proc: WorkerProcess, command: Command) -> None:
        proc.exiting = True
        if proc.channel_open:
            channel_send(proc.channel, command.value)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = self.processes.pop(pid, None)
            if proc is not None:
                self._worker_exited(proc, status)

    def _worker_exited(self, proc: WorkerProcess, status: int) -> None:
        assert self.counters is not None
        self._drop_channel(proc)
        # Its tunnels died with it: the page must stop counting them.  Its
        # traffic totals stay in the slot, which the next worker reuses.
        self.counters.retire_slot(proc.slot)
        gen = proc.generation
        if gen.by_index.get(proc.index) is proc:
            del gen.by_index[proc.index]
        code = -1
        if os.WIFSIGNALED(status):
            log.log(ALERT, f"worker process {proc.pid} exited on signal {os.WTERMSIG(status)}")
        else:
            code = os.WEXITSTATUS(status)
            log.log(
                NOTICE if code == 0 else ALERT, f"worker process {proc.pid} exited with code {code}"
            )
        if self.stopping or proc.exiting or gen not in (self.current, self.pending):
            return
        if code == EXIT_FATAL:
            log.log(
                ALERT, f"worker process {proc.pid} exited with fatal code 2 and cannot be respawned"
            )
            if gen is self.pending:
                self._abandon_pending(f"new worker process {proc.pid} could not start")
            return
        if gen is self.pending and not proc.ready:
            self._abandon_pending(f"new worker process {proc.pid} exited before it was ready")
            return
        now = time.monotonic()
        delay = RESPAWN_DELAY if now - proc.started < MIN_LIFETIME else 0.0
        self.respawns.append((now + delay, gen, proc.index))

    # -- signals ----------------------------------------------------------------

    def _on_signals(self) -> None:
        while True:
            try:
                data = os.read(self._wakeup_r, 64)
            except BlockingIOError:
                return
            if not data:
                return
            for signum in data:
                handler = self._handlers.get(signum)
                if handler is not None:
                    handler()

    def handle_sighup(self) -> None:
        log.log(NOTICE, "signal 1 (SIGHUP) received, reconfiguring")
        self.reload()

    def handle_sigusr1(self) -> None:
        log.log(NOTICE, "signal 10 (SIGUSR1) received, reopening logs")
        reopen_error_log()
        for proc in self.processes.values():
            if proc.channel_open:
                channel_send(proc.channel, Command.REOPEN.value)

    def handle_sigquit(self) -> None:
        log.log(NOTICE, "signal 3 (SIGQUIT) received, shutting down")
        self.shutdown(graceful=True)

    def handle_sigterm(self) -> None:
        log.log(NOTICE, "signal 15 (SIGTERM) received, exiting")
        self.shutdown(graceful=False)

    def handle_sigint(self) -> None:
        log.log(NOTICE, "signal 2 (SIGINT) received, exiting")
        self.shutdown(graceful=False)

    def handle_sigchld(self) -> None:
        pass  # the loop reaps after every wake-up

    # -- reload -----------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the config; on success start a new generation of workers."""
        from ngxws.config.loader import ConfigError, load_config

        if self.stopping or self.current is None or self.counters is None:
            return
        try:
            new = load_config(self.config.path, self.config.prefix, self.config.allow_unenforced)
        except ConfigError as exc:
            log.log(EMERG, f"{exc}; keeping the running configuration")
            return
        except Exception as exc:  # never let a reload take the server down
            log.log(
                EMERG, f"cannot read {self.config.path}: {exc!r}; keeping the running configuration"
            )
            return
        problems = preflight(new)
        for problem in problems:
            log.log(EMERG, f"{problem}; keeping the running configuration")
        if problems:
            return
        _warn_unenforced(new)
        try:  # nginx keeps a zone of the same name and size, state and all
            zones = LimitZones.for_config(new, self.current.zones)
        except (ZoneKeyChanged, OSError) as exc:
            log.log(EMERG, f"{exc}; keeping the running configuration")
            return
        if self.pending is not None:
            self._abandon_pending(None)
        workers = worker_count(new)
        if self.counters.free_slots() < workers:
            log.log(
                ALERT,
                f"cannot start {workers} more worker processes while "
                f"{len(self.processes)} are still running; keeping the running configuration",
            )
            return
        try:
            sockets = ListenSockets.bind(new, workers, keep=self.current.sockets)
        except BindError as exc:
            log.log(EMERG, f"{exc}; keeping the running configuration")
            return
        sdnotify.reloading()
        log.log(NOTICE, "start worker processes")
        self.pending_deadline = time.monotonic() + READY_TIMEOUT
        self.pending = self._new_generation(new, sockets, workers, zones)

    def _switch_to_pending(self) -> None:
        """Every new worker accepts: the old ones drain, the new config is the config."""
        new, old = self.pending, self.current
        assert new is not None and old is not None
        self.pending = None
        self.current = new
        for proc in self.processes.values():
            if proc.generation is not new and not proc.exiting:
                self._tell(proc, Command.DRAIN)
        old.sockets.close_unused(new.sockets)
        self._adopt_files(new.config)
        self.config = new.config
        log.log(
            NOTICE,
            f"reconfigured: {new.workers} new worker processes, the old ones finish their connections",
        )
        sdnotify.notify("READY=1", f"STATUS=serving with {new.workers} worker processes")

    def _abandon_pending(self, why: str | None) -> None:
        """Give up on the reload in progress: ``why`` it failed, or None when
        a newer reload replaces it."""
        gen, self.pending = self.pending, None
        if gen is None:
            return
        if why is None:
            log.log(NOTICE, "a newer reload replaces the one in progress")
        else:
            log.log(ALERT, f"reload failed: {why}; keeping the running configuration")
        for proc in list(gen.by_index.values()):
            self._tell(proc, Command.DRAIN)  # some may already have taken connections
        self.respawns = [r for r in self.respawns if r[1] is not gen]
        gen.sockets.close_unused(self.current.sockets if self.current is not None else None)
        sdnotify.notify("READY=1")

    def _adopt_files(self, config: Config) -> None:
        """The master's own files follow the new config (pid, error_log)."""
        if (
            config.error_log != self.config.error_log
            or config.error_log_level != self.config.error_log_level
        ):
            try:
                setup_error_log(config.error_log, config.error_log_level)
            except OSError as exc:
                log.log(ALERT, f'open() "{config.error_log}" failed ({exc.errno}: {exc.strerror})')
        if config.pid_path != self.pid_path:
            if config.pid_path:
                try:
                    _write_pid(config.pid_path)
                except OSError as exc:
                    log.log(
                        ALERT, f'open() "{config.pid_path}" failed ({exc.errno}: {exc.strerror})'
                    )
                    return
            if self.pid_path:
                _remove_pid(self.pid_path)
            self.pid_path = config.pid_path

    # -- stopping -------------------------------------------------------------------

    def shutdown(self, graceful: bool) -> None:
        """Tell every worker to stop; the loop ends when all have exited."""
        if self.stopping and (graceful or not self.graceful):
            return
        hurry = self.stopping
        self.stopping = True
        self.graceful = graceful
        if not hurry:
            self.stop_deadline = time.monotonic() + SHUTDOWN_GRACE + STOP_MARGIN
            sdnotify.notify("STOPPING=1")
        self.respawns.clear()
        command = Command.QUIT if graceful else Command.STOP
        for proc in self.processes.values():
            self._tell(proc, command)
        # The master's copies of the listening sockets go now: nothing will
        # accept on them again, and queued connections should be refused
        # rather than wait for the end of the grace period.
        for gen in (self.current, self.pending):
            if gen is not None:
                gen.sockets.close_unused(None)

    def _emergency_stop(self) -> None:
        """The master itself failed: stop the workers fast, bounded."""
        for proc in self.processes.values():
            _kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_GRACE
        while self.processes and time.monotonic() < deadline:
            for pid in list(self.processes):
                try:
                    done, _status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    del self.processes[pid]
            time.sleep(0.05)
        for pid in self.processes:
            _kill(pid, signal.SIGKILL)

    def _cleanup(self) -> None:
        for gen in (self.current, self.pending):
            if gen is not None:
                gen.sockets.close_unused(None)
        for proc in self.processes.values():
            proc.channel.close()
        self._selector.close()
        signal.set_wakeup_fd(-1)
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)
        if self.pid_path:
            _remove_pid(self.pid_path)
        log.log(NOTICE, "exit")


def _ignore_in_python(signum: int, frame: object) -> None:
    """Python-level half of a master signal: nothing (see ``_install_signals``)."""


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _flush_and_exit(code: int) -> None:
    """End a forked worker without running the master's cleanup or atexit hooks."""
    try:
        for handler in logging.getLogger("ngxws").handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _write_pid(path: str) -> None:
    """Write our pid so that a reader (``ngxws -s``) never sees a half-written file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def _remove_pid(path: str) -> None:
    """Remove the pid file if it is still ours (a newer master may have replaced it)."""
    try:
        with open(path) as f:
            if f.read().strip() != str(os.getpid()):
                return
        os.unlink(path)
    except OSError:
        pass
