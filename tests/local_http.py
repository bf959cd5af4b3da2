"""A tiny HTTP server on 127.0.0.1 for download tests (never any other address).

Serves an in-memory ``{path: bytes}`` table, honours single ``Range: bytes=N-`` requests (206
with ``Content-Range``; 416 past the end), and can be told to cut a response short after some
bytes so resume logic can be exercised. Every request is logged for assertions.
"""

from __future__ import annotations

import http.server
import re
import threading
from dataclasses import dataclass, field


@dataclass
class LocalServer:
    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before dropping
    ignore_range: bool = False
    log: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    httpd: http.server.ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def start(self) -> LocalServer:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0].lstrip("/")
                rng = self.headers.get("Range")
                server.log.append((path, rng))
                data = server.files.get(path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start, status = 0, 200
                m = re.match(r"^bytes=(\d+)-$", rng or "")
                if m and not server.ignore_range:
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                cut = server.cut_after.pop(path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    def requests_for(self, path: str) -> list[str | None]:
        return [r for p, r in self.log if p == path]
