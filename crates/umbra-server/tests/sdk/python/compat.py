"""Drives the official PyPI `opentok` 3.x server SDK against a running umbra server.

Usage: compat.py URL API_KEY API_SECRET NO_ADDON_KEY NO_ADDON_SECRET
       compat.py act URL API_KEY API_SECRET SESSION_ID CONNECTION_ID
Prints one JSON object: the session and the tokens the SDK generated, plus what the SDK reported
for the calls umbra must refuse. The Rust test (tests/sdk_compat.rs) checks it and connects with
the tokens over signaling.
"""
import json
import sys

import opentok
from opentok import Client, MediaModes, Roles


def act(url, key, secret, session_id, connection_id):
    """Acts on a connected client through the REST API: a signal to it, then a forced disconnect."""
    client = Client(key, secret, api_url=url)
    client.send_signal(session_id, {"type": "sdk", "data": "to you"}, connection_id)
    client.force_disconnect(session_id, connection_id)
    print(json.dumps({"ok": True}))


def main():
    if sys.argv[1] == "act":
        return act(*sys.argv[2:7])
    url, key, secret, bad_key, bad_secret = sys.argv[1:6]
    out = {"sdk_version": opentok.__version__ if hasattr(opentok, "__version__") else "3.x"}
    client = Client(key, secret, api_url=url)

    session = client.create_session(media_mode=MediaModes.routed, e2ee=True)
    out["session_id"] = session.session_id
    out["jwt_publisher"] = client.generate_token(
        session.session_id, role=Roles.publisher, data="py jwt", initial_layout_class_list=["focus"]
    )
    out["t1_moderator"] = client.generate_token(
        session.session_id, role=Roles.moderator, data="py t1 with spaces", use_jwt=False
    )
    out["jwt_subscriber"] = client.generate_token(session.session_id, role=Roles.subscriber)

    # A relayed session works too (e2ee=false is sent explicitly by this SDK).
    relayed = client.create_session()
    out["relayed_session_id"] = relayed.session_id

    # Things umbra must refuse, as the SDK reports them.
    try:
        client.start_archive(session.session_id, name="nope")
        out["archive_error"] = None
    except Exception as e:  # the SDK raises ArchiveError with the server's message
        out["archive_error"] = f"{type(e).__name__}: {e}"
    try:
        Client(bad_key, bad_secret, api_url=url).create_session(media_mode=MediaModes.routed, e2ee=True)
        out["no_addon_error"] = None
    except Exception as e:
        out["no_addon_error"] = f"{type(e).__name__}: {e}"
    try:
        Client(key, "0" * 40, api_url=url).create_session()
        out["bad_secret_error"] = None
    except Exception as e:
        out["bad_secret_error"] = f"{type(e).__name__}: {e}"

    client.send_signal(session.session_id, {"type": "sdk", "data": "hello from python"})
    out["streams_count"] = len(client.list_streams(session.session_id).items)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
