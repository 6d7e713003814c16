"""A request in flight on a client connection: what the parser delivered,
and the state carried across its internal redirects.  Its own module so
the per-request helpers (upgrade, static_phase) can build and type it
without importing the connection."""

from __future__ import annotations

import asyncio

from ngxws.http.body import RequestBody
from ngxws.http.request import RequestHead
from ngxws.http.x_accel import Copied
from ngxws.limits.state import RequestLimits


class Pending:
    """A request whose head (and body) the parser has delivered."""

    __slots__ = (
        "head", "body", "upgrade", "leftover", "error", "redirects", "complete", "status_override",
        "limits", "sender", "http09", "uri_changes", "error_page_done", "accel",
    )

    def __init__(self, head: RequestHead | None, error: int = 0) -> None:
        self.head = head
        self.body: RequestBody | None = None  # memory, temp file or pipe (ngxws.http.body)
        self.sender: asyncio.Task[None] | None = None  # writing the body upstream
        self.upgrade = False  # carries Upgrade: nothing after it is parsed until it is answered
        self.leftover = b""  # what the client sent after it meanwhile
        self.error = error
        self.redirects = 0  # error_page hops so far
        # nginx's r->error_page: a hop from a location without
        # recursive_error_pages was made, no error_page applies any more
        self.error_page_done = False
        self.complete = False  # answer before the body (declared length over the limit)
        self.status_override: int | None = None  # error_page's code for the final answer
        self.limits = RequestLimits()  # limit_req/limit_conn state, kept across internal redirects
        self.http09 = False  # an HTTP/0.9 request: answered without status line and headers
        self.uri_changes = 0  # internal redirects so far (static_phase: index, try_files)
        self.accel: Copied | None = None  # what an X-Accel-Redirect copied (proxy/x_accel.py)

    def redirected(self, head: RequestHead) -> Pending:
        """The request after ``error_page``'s internal redirect to a URI: the
        new head, the same upgrade, error_page and limit state (the body is
        not sent again)."""
        inner = Pending(head)
        inner.upgrade = self.upgrade
        inner.redirects = self.redirects
        inner.error_page_done = self.error_page_done
        inner.status_override = self.status_override
        inner.limits = self.limits
        inner.accel = self.accel
        if self.accel is not None:
            # an X-Accel-Redirect's request keeps its body (nginx sends it
            # again); error_page's was discarded (ngx_http_special_response_handler)
            inner.body, inner.sender = self.body, self.sender
        return inner
