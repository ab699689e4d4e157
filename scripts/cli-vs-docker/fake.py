#!/usr/bin/env python3
# Tiny fake Engine API daemon on a unix socket: records requests, answers from routes.json.
import json, os, re, sys, socketserver, http.server
SOCK = sys.argv[1]; LOG = sys.argv[2]; ROUTES = sys.argv[3] if len(sys.argv) > 3 else None
API = os.environ.get("FAKE_API", "1.41")
def routes():
    if ROUTES and os.path.exists(ROUTES):
        return json.load(open(ROUTES))
    return []
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def address_string(self): return "unix"
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.headers.get("Transfer-Encoding") == "chunked":
            while True:
                l = int(self.rfile.readline().strip(), 16)
                if l == 0: self.rfile.readline(); break
                body += self.rfile.read(l); self.rfile.readline()
        path = re.sub(r"^/v1\.\d+", "", self.path)
        with open(LOG, "a") as f:
            f.write(json.dumps({"m": self.command, "p": self.path, "ct": self.headers.get("Content-Type"), "b": body.decode("utf-8", "replace")}) + "\n")
        if path == "/_ping":
            return self.reply(200, b"" if self.command == "HEAD" else b"OK", "text/plain; charset=utf-8")
        for r in routes():
            if (r.get("m", self.command) == self.command) and re.fullmatch(r["p"], path):
                b = r.get("b", "")
                b = (json.dumps(b) if not isinstance(b, str) else b).encode()
                return self.reply(r.get("s", 200), b, "application/json" if b else None)
        if path.startswith("/containers/create"):
            return self.reply(201, b'{"Id":"c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ff","Warnings":[]}\n', "application/json")
        return self.reply(404, b'{"message":"page not found"}\n', "application/json")
    def reply(self, st, body, ct):
        self.send_response(st)
        self.send_header("Api-Version", API)
        if ct: self.send_header("Content-Type", ct)
        if st != 204: self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and st != 204: self.wfile.write(body)
    do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = handle_any
class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    def get_request(self):
        s, _ = self.socket.accept(); return s, ("unix", 0)
try: os.unlink(SOCK)
except FileNotFoundError: pass
S(SOCK, H).serve_forever()
