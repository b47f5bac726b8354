"""The change feed of this bounce host's store, over HTTP (protocol: mailinfra.suppression_service.feed).

Served from a thread of the processor with a store connection per thread (SQLite WAL: the feed reads while
the processor writes). Only GET /v1/changes, only with the feed key derived from the stack secret.
"""

from __future__ import annotations

import http.server
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any

from mailinfra.suppression.store import SuppressionStore
from mailinfra.suppression_service.feed import PAGE, authorized, encode_page


def serve_feed(listen: tuple[str, int], secret: bytes,
               open_store: Callable[[], SuppressionStore]) -> http.server.ThreadingHTTPServer:
    """Start the feed server on a daemon thread; the caller stops it with shutdown()."""
    local = threading.local()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/v1/changes":
                self._reply(404, b"not found\n")
                return
            if not authorized(self.headers.get("Authorization"), secret):
                self._reply(401, b"feed key required\n")
                return
            query = urllib.parse.parse_qs(url.query)
            try:
                after = int(query.get("after", ["0"])[0])
                limit = min(int(query.get("limit", [str(PAGE)])[0]), PAGE)
            except ValueError:
                self._reply(400, b"after and limit are integers\n")
                return
            if not hasattr(local, "store"):
                local.store = open_store()
            changes = local.store.changes_since(after, limit)
            last = max([after, *(c.seq for c in changes)])
            self._reply(200, encode_page(last, changes), "application/json")

        def _reply(self, status: int, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:  # one line per poll per host per second: too much
            pass

    server = http.server.ThreadingHTTPServer(listen, Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="feed", daemon=True).start()
    return server
