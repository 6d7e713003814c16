"""The ``ngxws`` command: nginx's command line, where it makes sense.

Exit codes: 0 success; 1 configuration or start-up error (message names
file:line and the directive, like ``nginx -t``); 2 usage error (click).
"""

from __future__ import annotations

import sys

import click

from ngxws import __version__

DEFAULT_CONF = "/etc/nginx/nginx.conf"

_conf_option = click.option(
    "-c", "conf", default=DEFAULT_CONF, show_default=True, type=click.Path(dir_okay=False), help="nginx.conf to use"
)
_prefix_option = click.option(
    "-p", "prefix", default=None, type=click.Path(file_okay=False), help="prefix for relative runtime paths (logs, pid, ws_log)"
)
_allow_option = click.option(
    "--allow-unenforced",
    "allow",
    multiple=True,
    metavar="NAME",
    help="run although directive NAME (access control ngxws does not enforce) is in the config; repeatable",
)


def _load(conf: str, prefix: str | None, allow: tuple[str, ...] | None = ()):  # type: ignore[no-untyped-def]
    from ngxws.config.loader import ConfigError, load_config

    try:
        config = load_config(conf, prefix, allow)
    except ConfigError as exc:
        click.echo(f"ngxws: [emerg] {exc}", err=True)
        click.echo(f"ngxws: configuration file {conf} test failed", err=True)
        sys.exit(1)
    return config


def _warn(config) -> None:  # type: ignore[no-untyped-def]
    from ngxws.config.report import start_warnings

    for warning in start_warnings(config):
        click.echo(f"ngxws: [warn] {warning}", err=True)


@click.group(invoke_without_command=True)
@click.version_option(__version__, "-v", "--version", prog_name="ngxws")
@click.option("-s", "signal_name", type=click.Choice(["stop", "quit", "reopen", "reload"]), help="send a signal to the master process (uses the pid file)")
@click.option("-t", "test", is_flag=True, help="test the configuration and exit (same as `check`)")
@_conf_option
@_prefix_option
@_allow_option
@click.pass_context
def main(
    ctx: click.Context, signal_name: str | None, test: bool, conf: str, prefix: str | None, allow: tuple[str, ...]
) -> None:
    """Run an nginx.conf that uses ngx_http_websocket_stat_module, without nginx."""
    if ctx.invoked_subcommand is not None:
        return
    if signal_name is not None:
        from ngxws.signals import send_signal

        sys.exit(send_signal(_load(conf, prefix, None), signal_name))
    if test:
        ctx.invoke(check, conf=conf, prefix=prefix, allow=allow)
        return
    click.echo(ctx.get_help())


@main.command()
@_conf_option
@_prefix_option
@_allow_option
def check(conf: str, prefix: str | None, allow: tuple[str, ...]) -> None:
    """Validate the config and print what would run (our `nginx -t`)."""
    from ngxws.config.report import render_check_report
    from ngxws.master import preflight

    config = _load(conf, prefix, allow)
    _warn(config)
    problems = preflight(config)  # files and TLS material, as `nginx -t` opens them
    if problems:
        for problem in problems:
            click.echo(f"ngxws: [emerg] {problem}", err=True)
        click.echo(f"ngxws: configuration file {conf} test failed", err=True)
        sys.exit(1)
    click.echo(render_check_report(config), nl=False)
    click.echo(f"ngxws: configuration file {conf} test is successful", err=True)


@main.command()
@_conf_option
@_prefix_option
@_allow_option
def run(conf: str, prefix: str | None, allow: tuple[str, ...]) -> None:
    """Serve the config until SIGTERM/SIGINT (fast stop) or SIGQUIT (graceful)."""
    from ngxws.supervisor import run as serve

    config = _load(conf, prefix, allow)
    if config.error_log is not None:
        _warn(config)  # on the terminal too; the master writes them to the error log
    sys.exit(serve(config))


@main.command()
@_conf_option
@_prefix_option
@click.option("--url", default=None, metavar="URL", help="the ws_stat location's URL (default: found in the config)")
@click.option("--once", is_flag=True, help="print one screen without escape codes and exit (for scripts)")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0), help="seconds between refreshes")
@click.option("-n", "iterations", default=0, type=click.IntRange(min=0), help="stop after N refreshes (0: until interrupted)")
def top(conf: str, prefix: str | None, url: str | None, once: bool, interval: float, iterations: int) -> None:
    """Live websocket numbers of the running instance in the terminal (its ws_stat JSON)."""
    from ngxws.top import run_top, stats_target, target_from_url

    if url is not None:
        target = target_from_url(url)
    else:
        found = stats_target(_load(conf, prefix, None))  # None: only reading where the page is
        if found is None:
            click.echo(f"ngxws: no ws_stat location reachable over TCP in {conf} (give --url)", err=True)
            sys.exit(1)
        target = found
    sys.exit(run_top(target, interval, once, iterations))
