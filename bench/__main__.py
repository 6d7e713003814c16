"""``python -m bench``: run the workloads against ngxws and nginx, print, write JSON.

Exit status: 0 when every cell produced a number, 1 when some cell failed,
2 on bad arguments or a missing nginx.  Missed targets do not change it: the
benchmark reports, it does not gate.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import uvloop

from bench.driver import Options, run_bench
from bench.proxies import DEFAULT_NGXWS_CMD, NGINX, NGXWS
from bench.workloads import BY_KEY


def _workload_list(text: str) -> list[str]:
    keys = [item.strip().upper() for item in text.split(",") if item.strip()]
    unknown = [key for key in keys if key not in BY_KEY]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s): {', '.join(unknown) or 'none given'}"
        )
    return keys


def _int_list(text: str) -> list[int]:
    try:
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 1,2")
    return values


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark ngxws against Debian's nginx on the same nginx.conf "
        "(websocket proxy_pass), in alternating rounds.",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per workload (default 3)")
    parser.add_argument(
        "--workloads",
        type=_workload_list,
        default=list(BY_KEY),
        help="comma-separated subset of " + ",".join(BY_KEY) + " (default: all)",
    )
    parser.add_argument(
        "--workers", type=_int_list, default=[1, 2], help="worker_processes values (default 1,2)"
    )
    parser.add_argument("--only", choices=[NGINX, NGXWS], help="run one side only")
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("bench/results/latest.json"),
        help="where to write results (default bench/results/latest.json; '-' for none)",
    )
    parser.add_argument("--duration", type=float, default=3.0, help="measure window, s (default 3)")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="warm-up before it, s (default 1)"
    )
    parser.add_argument(
        "--nginx", default=shutil.which(NGINX) or "/usr/sbin/nginx", help="nginx binary"
    )
    parser.add_argument(
        "--ngxws-cmd",
        default=DEFAULT_NGXWS_CMD,
        help="command that starts ngxws; {python}, {conf}, {prefix} are filled in "
        f"(default: {DEFAULT_NGXWS_CMD!r})",
    )
    parser.add_argument(
        "--affinity",
        choices=["split", "none"],
        default="split",
        help="split: proxy on the first CPU, load generator + backend on the others (default)",
    )
    parser.add_argument(
        "--idle-conns", type=int, default=5000, help="connections held open by W6 (default 5000)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directory (confs, logs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, check, run; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0 or args.idle_conns < 1:
        parser.error("--rounds and --idle-conns must be >= 1, --duration > 0, --warmup >= 0")
    if args.only != NGXWS and not shutil.which(args.nginx):
        print(
            f"bench: nginx not found ({args.nginx}); run scripts/install-nginx.sh as root",
            file=sys.stderr,
        )
        return 2
    sides = [args.only] if args.only else [NGXWS, NGINX]
    options = Options(
        rounds=args.rounds,
        workloads=args.workloads,
        workers=args.workers,
        sides=sides,
        json_path=None if str(args.json) == "-" else args.json,
        duration=args.duration,
        warmup=args.warmup,
        nginx_bin=args.nginx,
        ngxws_cmd=args.ngxws_cmd,
        affinity=args.affinity,
        idle_conns=args.idle_conns,
        keep=args.keep,
        cwd=Path.cwd(),
    )
    cells, _, _ = uvloop.run(run_bench(options))
    return 0 if all(cell.value is not None for cell in cells) else 1


if __name__ == "__main__":
    sys.exit(main())
