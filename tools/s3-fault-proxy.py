#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a local S3 server, for the S3 client's tests.

    python3 tools/s3-fault-proxy.py UPSTREAM_URL

Listens on 127.0.0.1 on a free port, prints that port on its first line of output (and exits
when its standard input closes, so that it never outlives the test that started it), and
forwards every request to UPSTREAM_URL unchanged (the Host header too: the client signed it,
and the local server does not check signatures), except where a fault rule says otherwise.

Rules are set with `POST /__faults__` and a JSON list; each rule is consumed by the requests it
matches, in order, `times` times:
    {"method": "PUT", "query": "partNumber=2", "path": "segments/", "action": "503", "times": 2}
`method`, `query` and `path` are optional (a missing one matches anything; `query` and `path`
match substrings). Actions:
    "503", "500", "403", ...   answer with that status and an S3 error body, upstream untouched
    "after:500"                forward (so the request takes effect), then answer 500 instead
    "drop"                     close the connection without an answer
    "delay:SECONDS"            wait, then forward (a client with a shorter timeout gives up)
`GET /__faults__` returns the requests seen, one line each: "METHOD path?query action".
"""
import http.client
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse

upstream = urllib.parse.urlsplit(sys.argv[1])
rules = []
seen = []
lock = threading.Lock()


def take_rule(method, path, query):
    with lock:
        for rule in rules:
            if rule.get("times", 1) <= 0:
                continue
            if "method" in rule and rule["method"] != method:
                continue
            if "query" in rule and rule["query"] not in query:
                continue
            if "path" in rule and rule["path"] not in path:
                continue
            rule["times"] = rule.get("times", 1) - 1
            return rule["action"]
    return None


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=None, length=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        # A HEAD answer has no body but the length of the object's.
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error_body(self, status):
        code = {403: "AccessDenied", 500: "InternalError", 503: "SlowDown"}.get(status, "Fault")
        return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code><Message>injected by the fault proxy"
                "</Message></Error>" % code).encode()

    def forward(self, body):
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        headers = {name: value for name, value in self.headers.items()}
        connection.request(self.command, self.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        passed = {name: value for name, value in response.getheaders()
                  if name.lower() not in ("content-length", "transfer-encoding", "connection")}
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        connection.close()
        return response.status, data, passed, length

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        if path == "/__faults__":
            if self.command == "POST":
                with lock:
                    rules.extend(json.loads(body or b"[]"))
                return self.answer(200, b"ok")
            with lock:
                return self.answer(200, "\n".join(seen).encode())
        action = take_rule(self.command, path, query)
        with lock:
            seen.append("%s %s%s %s" % (self.command, path, "?" + query if query else "", action or "forward"))
        if action is None or action.startswith("delay:"):
            if action:
                time.sleep(float(action.split(":", 1)[1]))
            status, data, headers, length = self.forward(body)
            return self.answer(status, data, headers, length)
        if action == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if action.startswith("after:"):
            self.forward(body)
            status = int(action.split(":", 1)[1])
            return self.answer(status, self.error_body(status), {"Content-Type": "application/xml"})
        status = int(action)
        return self.answer(status, self.error_body(status), {"Content-Type": "application/xml"})

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def exit_with_parent():
    """The test that started this holds the write end of its stdin: EOF means it is gone."""
    sys.stdin.buffer.read()
    os._exit(0)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
threading.Thread(target=exit_with_parent, daemon=True).start()
print(server.server_address[1], flush=True)
server.serve_forever()
