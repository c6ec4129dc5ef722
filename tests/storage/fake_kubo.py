"""A fake Kubo RPC server for the unit tests of `KuboContentStore`: no Kubo binary can be
installed offline. It speaks the small part of the RPC API the adapter uses (POST
/api/v0/version, add, block/get, block/stat), with Kubo's error shape (HTTP 500 and a JSON
``Message``), and keeps blocks in memory. It builds DAGs with our own importer; that importer is
checked against Kubo's published CIDs in test_unixfs.py, not here."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from ascendnet.storage.cid import Cid
from ascendnet.storage.unixfs import FileImporter, ImportOptions


@dataclass
class FakeKubo:
    version: str = "0.32.1"
    blocks: dict[str, bytes] = field(default_factory=dict)  # keyed by CIDv1 string
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    #: When set, /add answers this CID whatever it stored (a node with other Import settings).
    add_answer: str | None = None
    #: When set, /block/get of a missing block sleeps this long (Kubo searching the network).
    missing_block_delay: float = 0.0

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                params = dict(parse_qsl(url.query))
                fake.requests.append((url.path, params))
                body = self._read_body()
                try:
                    status, payload, ctype = fake.handle(url.path, params, body, self.headers)
                except KeyError as exc:
                    status, payload, ctype = 500, _error(str(exc.args[0])), "application/json"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def api(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/http"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def key(self, cid: str) -> str:
        return str(Cid.parse(cid).to_v1())

    def handle(
        self, path: str, params: dict[str, str], body: bytes, headers: object
    ) -> tuple[int, bytes, str]:
        if path == "/api/v0/version":
            return (
                200,
                json.dumps({"Version": self.version, "Commit": "fake", "Repo": "16"}).encode(),
                "application/json",
            )
        if path == "/api/v0/add":
            options = ImportOptions(
                cid_version=1 if params.get("cid-version") == "1" else 0,
                raw_leaves=params.get("raw-leaves", "").lower() == "true",
                chunk_size=int(params.get("chunker", "size-262144").removeprefix("size-")),
                max_links=int(params.get("max-file-links", "174")),
            )
            name, content = _multipart_file(body, str(headers.get("Content-Type")))  # type: ignore[attr-defined]
            importer = FileImporter(options, on_block=lambda c, b: self.blocks.__setitem__(str(c.to_v1()), b))
            importer.update(content)
            cid = str(importer.finish())
            answer = {"Name": name, "Hash": self.add_answer or cid, "Size": str(len(content))}
            return 200, (json.dumps(answer) + "\n").encode(), "application/json"
        if path == "/api/v0/block/get":
            key = self.key(params["arg"])
            if key not in self.blocks:
                time.sleep(self.missing_block_delay)
                raise KeyError(f"block was not found locally (offline): ipld: could not find {params['arg']}")
            return 200, self.blocks[key], "text/plain"
        if path == "/api/v0/block/stat":
            key = self.key(params["arg"])
            if key not in self.blocks:
                raise KeyError(f"block was not found locally (offline): ipld: could not find {params['arg']}")
            return (
                200,
                json.dumps({"Key": params["arg"], "Size": len(self.blocks[key])}).encode(),
                "application/json",
            )
        return 404, b"404 page not found", "text/plain"


def _error(message: str) -> bytes:
    return json.dumps({"Message": message, "Code": 0, "Type": "error"}).encode()


def _multipart_file(body: bytes, content_type: str) -> tuple[str, bytes]:
    boundary = content_type.split("boundary=", 1)[1].strip('"')
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, content = part.partition(b"\r\n\r\n")
        if b"application/x-directory" in head:
            continue
        name = head.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
        return name, content.removesuffix(b"\r\n")
    raise ValueError("no file in the multipart body")
