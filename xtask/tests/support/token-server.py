#!/usr/bin/env python3
"""A registry token endpoint for tests (the Bearer flow Harbor and Docker Hub use).

Usage: token-server.py PORT_FILE KEY CERT USER PASSWORD SERVICE ISSUER COUNT_FILE
Serves GET /token?service=...&scope=repository:NAME:pull,push on a free loopback port
(written to PORT_FILE): checks HTTP Basic credentials, and answers a JWT signed (RS256,
by `openssl dgst`) with KEY, its certificate CERT in the x5c header, granting the scopes
asked. Counts the tokens issued in COUNT_FILE.
"""
import base64, http.server, json, os, subprocess, sys, time, urllib.parse

port_file, key, cert, user, password, service, issuer, count_file = sys.argv[1:9]

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def cert_der():
    out = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return base64.b64encode(out).decode()

X5C = cert_der()

def sign(payload):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [X5C]}
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                         input=signing_input.encode(), check=True, capture_output=True).stdout
    return signing_input + "." + b64(sig)

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            self.send_error(404)
            return
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="token"')
            self.end_headers()
            return
        query = urllib.parse.parse_qs(url.query)
        access = []
        for scope in query.get("scope", []):
            for one in scope.split(" "):
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        token = sign({"iss": issuer, "sub": user, "aud": service, "exp": now + 600,
                      "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(),
                      "access": access})
        with open(count_file, "a") as f:
            f.write("1\n")
        body = json.dumps({"token": token, "access_token": token, "expires_in": 600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
