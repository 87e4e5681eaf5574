"""What every interop driver script in this directory shares: the JSON event printer, logging,
TLS with the test server's self-signed certificate, and the slixmpp connect/run loop.

The scripts run as files (`python3 slixmpp_client.py ...`), so this directory is on sys.path
and they import it as `interop_common`. It imports neither slixmpp nor aioxmpp at load time:
each script needs only its own library installed.
"""
import asyncio
import json
import logging
import os
import ssl
import sys

HOST = '127.0.0.1'


def out(**kw):
    """Prints one event as a JSON line on stdout (the tests parse these)."""
    print(json.dumps(kw), flush=True)


def setup_logging(env=None):
    """Library logging at CRITICAL only, DEBUG when asked for: by a non-empty environment
    variable `env` when given, else by a --debug argument."""
    debug = bool(os.environ.get(env)) if env else '--debug' in sys.argv
    logging.basicConfig(level=logging.DEBUG if debug else logging.CRITICAL)


# slixmpp

def trust_self_signed(client):
    """A slixmpp client that accepts the test server's self-signed certificate (no hostname or
    chain check) and sets enable_plaintext off."""
    client.enable_plaintext = False
    client.ssl_context.check_hostname = False
    client.ssl_context.verify_mode = ssl.CERT_NONE


def report_features(client):
    """Prints each stream's feature names ("features") as they arrive."""
    def on_in(stanza):
        if stanza.name == 'features':
            out(event='features', features=sorted(stanza['features'].keys()))
        return stanza
    client.add_filter('in', on_in)


def report_stream_errors(client):
    """Prints a stream error the server sends ("stream-error")."""
    client.add_event_handler('stream_error', lambda error: out(event='stream-error', condition=error['condition'], text=error['text']))


def report_auth_failure(client):
    """When every SASL attempt failed, prints "auth-failed" with the condition of the last
    <failure/> (kept in client.auth_condition) and disconnects."""
    client.auth_condition = None

    def on_failed_one(stanza):
        try:
            client.auth_condition = stanza['condition']
        except Exception:
            client.auth_condition = 'unknown'

    def on_failed(_event):
        out(event='auth-failed', condition=client.auth_condition)
        client.disconnect()

    client.add_event_handler('failed_all_auth', on_failed)
    client.add_event_handler('failed_auth', on_failed_one)


def run_slixmpp(client, port, timeout):
    """Connects to the test server on `port` and runs until the client disconnects, then prints
    "disconnected"; after `timeout` seconds prints "timeout" and exits with status 3."""
    client.connect((HOST, int(port)))
    try:
        asyncio.get_event_loop().run_until_complete(asyncio.wait_for(client.disconnected, timeout))
    except asyncio.TimeoutError:
        out(event='timeout')
        sys.exit(3)
    out(event='disconnected')


# aioxmpp

def aioxmpp_client(jid, password, port):
    """An aioxmpp.Client for `jid` (a string or aioxmpp.JID) that logs in with `password` over
    STARTTLS to the test server on `port`, its self-signed certificate accepted (no_verify)."""
    import aioxmpp
    import aioxmpp.connector
    if isinstance(jid, str):
        jid = aioxmpp.JID.fromstr(jid)
    return aioxmpp.Client(
        jid,
        aioxmpp.make_security_layer(password, no_verify=True),
        override_peer=[(HOST, int(port), aioxmpp.connector.STARTTLSConnector())],
    )
