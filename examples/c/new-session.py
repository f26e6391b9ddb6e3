#!/usr/bin/env python3
"""Creates a routed, end-to-end encrypted session on a local `umbra serve`, as an app server
would (POST /session/create with a project JWT), and prints its id.

    new-session.py http://127.0.0.1:PORT API_KEY API_SECRET
"""
import base64, hashlib, hmac, json, sys, time, urllib.request


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def project_jwt(key: str, secret: str) -> str:
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"iss": key, "ist": "project", "iat": now, "exp": now + 180, "jti": f"c-sdk-{now}"}).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


url, key, secret = sys.argv[1:4]
req = urllib.request.Request(
    f"{url}/session/create",
    data=b"p2p.preference=disabled&e2ee=true",
    headers={"X-OPENTOK-AUTH": project_jwt(key, secret), "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    method="POST",
)
with urllib.request.urlopen(req, timeout=10) as resp:
    print(json.load(resp)[0]["session_id"])
