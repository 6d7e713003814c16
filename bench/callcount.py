"""Python calls per W5 connection: a deterministic measure of the upgrade path.

    python -m bench.callcount [CONNS] [TOP]

Copies this tree's ``ngxws`` package (with its built extensions) to a
temporary directory, makes that copy's worker run its loop under
``cProfile`` (the one line that calls ``uvloop.run`` is rewritten in the
copy, nothing here), serves the bench's conf with it and runs one cell of
``bench.ab``'s W5 client (32 loops of upgrade + 64 B text frame + close)
of CONNS connections; then prints the calls per connection and the TOP
functions by own time.  Call counts do not depend on the machine's load,
unlike the CPU times ``bench.ab`` compares (bench/PROFILE.md, "W5, round 5").
Bounded: CONNS connections, each within 5 s; the worker is stopped after.
"""

from __future__ import annotations

import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from bench.ab import _cell, _free_port, _wait_listening, start_backend, stop_all
from bench.proxies import ConfSpec, render_conf

_RUN = "        uvloop.run(main())\n"


def main(argv: list[str]) -> int:
    conns = int(argv[0]) if argv else 3000
    top = int(argv[1]) if len(argv) > 1 else 25
    here = Path(__file__).resolve().parent.parent
    tmp = Path(tempfile.mkdtemp(prefix="ngxws-callcount-"))
    shutil.copytree(here / "ngxws", tmp / "ngxws", ignore=shutil.ignore_patterns("__pycache__"))
    worker = tmp / "ngxws" / "worker.py"
    text = worker.read_text()
    if text.count(_RUN) != 1:
        print("worker.py no longer has the one uvloop.run(main()) line this rewrites", file=sys.stderr)
        return 2
    stats = tmp / "worker.prof"
    worker.write_text(text.replace(_RUN, (
        "        import cProfile\n"
        "        _prof = cProfile.Profile()\n"
        "        _prof.runcall(uvloop.run, main())\n"
        f"        _prof.dump_stats({str(stats)!r})\n"
    )))  # fmt: skip
    backend, backend_port = start_backend(tmp / "backend.stats", cwd=here)
    port = _free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(render_conf(ConfSpec(port, backend_port, 1, tmp)))
    proxy = subprocess.Popen(
        [sys.executable, "-m", "ngxws", "run", "-c", str(conf), "-p", str(tmp)], cwd=tmp, stderr=subprocess.DEVNULL
    )
    try:
        _wait_listening(port)
        done = uvloop.run(_cell(port, conns))
    finally:
        stop_all([proxy, backend])
    for _ in range(50):  # the worker writes its profile as it exits
        if stats.exists():
            break
        time.sleep(0.1)
    st = pstats.Stats(str(stats))
    calls = sum(v[1] for v in st.stats.values())
    python = sum(v[1] for k, v in st.stats.items() if k[0] != "~")
    print(f"{done} of {conns} connections upgraded; per connection: {calls / max(done, 1):.0f} calls, "
          f"{python / max(done, 1):.0f} of them Python functions (start-up included, amortised)")  # fmt: skip
    st.sort_stats("tottime").print_stats(top)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
