#!/usr/bin/env python3
"""Sends a signal to a whole session with the REST API, as an app server would
(POST /v2/project/{key}/session/{sid}/signal with a project JWT). It is never end-to-end
encrypted: the app server has no secret.

    rest-signal.py http://127.0.0.1:PORT API_KEY API_SECRET SESSION_ID TYPE DATA
"""
import base64, hashlib, hmac, json, sys, time, urllib.request


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def project_jwt(key: str, secret: str) -> str:
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"iss": key, "ist": "project", "iat": now, "exp": now + 180, "jti": f"c-sdk-signal-{now}"}).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


url, key, secret, session, kind, data = sys.argv[1:7]
req = urllib.request.Request(
    f"{url}/v2/project/{key}/session/{session}/signal",
    data=json.dumps({"type": kind, "data": data}).encode(),
    headers={"X-OPENTOK-AUTH": project_jwt(key, secret), "Content-Type": "application/json"},
    method="POST",
)
with urllib.request.urlopen(req, timeout=10) as resp:
    assert resp.status in (200, 204), resp.status
