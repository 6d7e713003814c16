"""nginx's content phase as a pure decision (ngxws.http.content.decide):
real confs through the loader, a location and the request's upgrade flag
in, the action the connection carries out -- table-driven, no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from ngxws.config.loader import load_config
from ngxws.config.model import Server
from ngxws.http.content import Action, Error, ProxyHTTP, Static, StatsPage, Upgrade, decide
from ngxws.routing.locations import match_location

CONF = """
events {}
http {
    server {
        listen 127.0.0.1:1;
        root /srv;
        location = /status { ws_stat; }
        location /proxy/ { proxy_pass http://127.0.0.1:9; }
        location /files/ { }
        location /legacy/ { uwsgi_pass 127.0.0.1:9; }
    }
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    conf = Path(tmp_path_factory.mktemp("content")) / "nginx.conf"
    conf.write_text(CONF)
    return load_config(str(conf), allow_unenforced=["uwsgi_pass"]).servers[0]


# uri, asks to upgrade -> action
TABLE: list[tuple[str, bool, Action]] = [
    ("/status", False, StatsPage()),
    ("/status", True, StatsPage()),  # ws_stat claims the location before any upgrade
    ("/proxy/a", False, ProxyHTTP()),
    ("/proxy/ws", True, Upgrade()),
    ("/files/a", False, Static()),
    ("/files/a", True, Static()),  # no proxy_pass: Upgrade is just a header
    ("/legacy/x", False, Error(502)),  # a handler ngxws cannot run fails closed
    ("/legacy/x", True, Error(502)),
]


@pytest.mark.parametrize(("uri", "upgrade", "action"), TABLE)
def test_decide(server: Server, uri: str, upgrade: bool, action: Action) -> None:
    found = match_location(server.locations, uri)
    assert found is not None
    assert decide(found.location, upgrade) == action
