"""A webhook receiver for the tests: it checks every request with the reference Standard
Webhooks library and says what it got, one JSON object per line on stdout.

    python webhook_receiver.py --port 0 --secret whsec_... [--secret whsec_...]

The first line is {"listening": <port>}. Then, for each request:

    {"path": ..., "id": ..., "timestamp": ..., "signature": ...,
     "contentType": ..., "userAgent": ...,
     "verified": [true | "<the library's error>", ...],   # one per --secret, in order
     "body": <the body parsed as JSON, or null>}

The line is written when the request has arrived, before it is answered. The path chooses
the answer:

    /ok        200, with X-Request-Id: rx-<n> (n counts requests from 1)
    /fail      500 "database is down"
    /slow      sleeps --slow-seconds (default 5), then 200
    /busy      429 with Retry-After: --retry-after (default 7)
    /gone      410 "endpoint removed"
    /bad       400 "unknown field"
    /redirect  308 to http://elsewhere.invalid/hook

With --faults N only the first N requests are answered so; later ones, on any path, as /ok:
an endpoint that fails, then recovers.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

ANSWERS = {
    "/ok": (200, {}, b"ok"),
    "/slow": (200, {}, b"ok, eventually"),
    "/fail": (500, {}, b"database is down"),
    "/busy": (429, {"Retry-After": "7"}, b"slow down"),
    "/gone": (410, {}, b"endpoint removed"),
    "/bad": (400, {}, b"unknown field"),
    "/redirect": (308, {"Location": "http://elsewhere.invalid/hook"}, b""),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", action="append", default=[])
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    parser.add_argument("--retry-after", default="7")
    parser.add_argument("--faults", type=int, metavar="N")
    args = parser.parse_args()
    verifiers = [Webhook(secret) for secret in args.secret]
    lock = threading.Lock()
    count = [0]

    def emit(record):
        with lock:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            headers = {name: value for name, value in self.headers.items()}
            verified = []
            for verifier in verifiers:
                try:
                    verifier.verify(raw, headers)
                    verified.append(True)
                except Exception as error:  # noqa: BLE001 - the error is what we report
                    verified.append(f"{type(error).__name__}: {error}")
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            with lock:
                count[0] += 1
                n = count[0]
            emit(
                {
                    "path": self.path,
                    "id": self.headers.get("webhook-id"),
                    "timestamp": self.headers.get("webhook-timestamp"),
                    "signature": self.headers.get("webhook-signature"),
                    "contentType": self.headers.get("content-type"),
                    "userAgent": self.headers.get("user-agent"),
                    "verified": verified,
                    "body": body,
                }
            )
            path = self.path if args.faults is None or n <= args.faults else "/ok"
            if path == "/slow":
                time.sleep(args.slow_seconds)
            status, extra, text = ANSWERS.get(path, (404, {}, b"no such path"))
            if path == "/busy":
                extra = {"Retry-After": args.retry_after}
            try:
                self.send_response(status)
                if status == 200:
                    self.send_header("X-Request-Id", f"rx-{n}")
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout under test): nobody to answer

        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    emit({"listening": server.server_address[1]})
    server.serve_forever()


if __name__ == "__main__":
    main()
