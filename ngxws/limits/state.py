"""What one request carries through the preaccess phase (and its redirects).

nginx keeps ``r->main->limit_req_status`` / ``limit_conn_status`` (so each
handler runs once per request, internal redirects included; they are also
the ``$limit_req_status`` / ``$limit_conn_status`` variables) and, for
limit_conn, one pool cleanup per count taken, run when the request is
freed.  ``RequestLimits`` is both; ``release()`` is the cleanups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ngxws.limits.zones import SharedZone

__all__ = [
    "RequestLimits",
    "PASSED",
    "DELAYED",
    "REJECTED",
    "DELAYED_DRY_RUN",
    "REJECTED_DRY_RUN",
]

# $limit_req_status / $limit_conn_status values (ngx_http_limit_*_status[])
PASSED = "PASSED"
DELAYED = "DELAYED"
REJECTED = "REJECTED"
DELAYED_DRY_RUN = "DELAYED_DRY_RUN"
REJECTED_DRY_RUN = "REJECTED_DRY_RUN"


@dataclass
class RequestLimits:
    """What one request (with its internal redirects) carries through the phase."""

    req_status: str = ""  # r->main->limit_req_status
    conn_status: str = ""  # r->main->limit_conn_status
    # limit_conn counts this request holds (nginx's pool cleanups)
    held: list[tuple[SharedZone, int]] = field(default_factory=list)

    def release(self) -> None:
        """ngx_http_limit_conn_cleanup() for every count held: the request
        (or its websocket tunnel) is over."""
        held, self.held = self.held, []
        for zone, node in reversed(held):
            assert zone.conn is not None
            with zone.locked():
                zone.conn.release(node)
