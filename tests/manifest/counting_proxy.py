"""A reverse proxy on 127.0.0.1 in front of an emulator (moto, fake-gcs-server) that counts the
requests that fetch an object's bytes, can shuffle listings, and can slow fetches down.

moto and fake-gcs-server keep no request log a test can read; this one is the server side's
count. Listings are shuffled per request (S3 `<Contents>` blocks, GCS JSON `items`), so pods
that list the same folder see it in different orders, as they may against a real service.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length", "accept-encoding"}
_CONTENTS = re.compile(rb"<Contents>.*?</Contents>", re.S)


class CountingProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.fetches: Counter[str] = Counter()
        """Object path (bucket/key) -> GETs of its bytes."""
        self.listings: list[list[str]] = []
        """The order of the names in each listing answered, as sent."""
        self.shuffle = False
        self.delay = 0.0
        """Seconds each fetch waits before it is answered (a kill -9 then lands midway)."""
        self._lock = threading.Lock()
        self._random = random.Random(20)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def handle(self) -> None:
                # A client killed with -9 leaves its connections behind.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().handle()

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                split = urlsplit(self.path)
                query = parse_qs(split.query)
                fetch = self.command == "GET" and (
                    query.get("alt") == ["media"]  # GCS media download
                    or ("list-type" not in query and split.path.count("/") >= 2
                        and not split.path.startswith("/storage/")))  # S3 GetObject
                if fetch:
                    key = unquote(split.path)
                    if "/download/storage/v1/b/" in key:
                        bucket, _, name = key.split("/download/storage/v1/b/", 1)[1].partition(
                            "/o/")
                        key = f"/{bucket}/{name}"
                    with proxy._lock:
                        proxy.fetches[key.lstrip("/")] += 1
                    if proxy.delay:
                        time.sleep(proxy.delay)
                listing = self.command == "GET" and (
                    "list-type" in query or split.path.endswith("/o"))
                connection = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                connection.close()
                if listing and answer.status == 200:
                    data = proxy._listed(data)
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                # A HEAD's answer has no body but tells the size the GET would have.
                length = answer.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

        return Handler

    def _listed(self, data: bytes) -> bytes:
        if data.lstrip().startswith(b"{"):
            document = json.loads(data)
            items = document.get("items", [])
            if self.shuffle:
                with self._lock:
                    self._random.shuffle(items)
            with self._lock:
                self.listings.append([i["name"] for i in items])
            return json.dumps(document).encode()
        blocks = _CONTENTS.findall(data)
        if not blocks:
            return data
        order = list(blocks)
        if self.shuffle:
            with self._lock:
                self._random.shuffle(order)
        with self._lock:
            self.listings.append([re.search(rb"<Key>(.*?)</Key>", b).group(1).decode()
                                  for b in order])
        start, end = data.index(blocks[0]), data.rindex(blocks[-1]) + len(blocks[-1])
        return data[:start] + b"".join(order) + data[end:]
