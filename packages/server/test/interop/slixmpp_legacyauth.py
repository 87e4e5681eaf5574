"""Non-SASL authentication (XEP-0078, jabber:iq:auth) with an independent client: slixmpp
(Debian python3-slixmpp) and the stanza classes of its xep_0078 plugin, driven by Parley's tests.

Usage: slixmpp_legacyauth.py PORT JID PASSWORD [--digest]

slixmpp 1.8.3's xep_0078 plugin cannot run as shipped: its authenticate() calls Iq.send()
without awaiting the future it returns (slixmpp made send() asynchronous; the plugin was never
ported), so it reads fields of a Future and fails; it also skips iq:auth whenever the server
offers SASL <mechanisms/>, as every RFC 6120 server does. This driver keeps the plugin's
stanzas (IqAuth, AuthFeature: the XML slixmpp builds and parses) and does the plugin's
exchange — get the fields, set username/password (or digest)/resource — with the sends
awaited, on the <auth xmlns='http://jabber.org/features/iq-auth'/> stream feature. The session
then continues as slixmpp's own (XEP-0199 ping to the server, presence, a message to itself).

Prints one JSON line per event: "features" (each stream's feature names), "fields" (the
fields the server asked for), "auth-error" (condition, code), "session" (the bound JID),
"ping", "message" (the message to itself came back), "stream-error", "disconnected".
"""
import asyncio
import hashlib
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.jid import JID
from slixmpp.plugins.xep_0078 import stanza as auth_stanza
from slixmpp.stanza import Iq, StreamFeatures
from slixmpp.xmlstream import register_stanza_plugin

from interop_common import out, report_features, report_stream_errors, run_slixmpp, setup_logging, trust_self_signed

setup_logging()


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, digest):
        # One mechanism when SASL is used: slixmpp offers tls-unique with -PLUS, which Parley does not support.
        super().__init__(jid, password, sasl_mech='SCRAM-SHA-256')
        self.digest = digest
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0199')
        register_stanza_plugin(Iq, auth_stanza.IqAuth)
        register_stanza_plugin(StreamFeatures, auth_stanza.AuthFeature)
        # Before SASL's <mechanisms/> (order 100), after STARTTLS (order 0) — the plugin's own order.
        self.register_feature('auth', self.legacy_auth, restart=False, order=15)
        trust_self_signed(self)
        # slixmpp queues stanzas other than bind/session until the session starts; the iq:auth
        # exchange happens before (its test suite's switch; nothing else is changed).
        self._always_send_everything = True
        report_features(self)
        self.add_event_handler('session_start', self.on_start)
        self.add_event_handler('message', self.on_message)
        report_stream_errors(self)
        self.got_message = asyncio.Event()

    def on_message(self, msg):
        if msg['body'] == 'note to self':
            out(event='message', frm=str(msg['from']))
            self.got_message.set()

    async def legacy_auth(self, features):
        try:
            return await self.authenticate()
        except Exception as e:  # a driver bug: say so rather than carry on to SASL
            out(event='driver-error', error=repr(e))
            self.disconnect()
            return True

    async def authenticate(self):
        # Step 1 (XEP-0078 §3): ask for the fields.
        iq = self.Iq()
        iq['type'] = 'get'
        iq['to'] = self.requested_jid.host
        iq['auth']['username'] = self.requested_jid.user
        try:
            resp = await iq.send(timeout=10)
        except IqError as e:
            out(event='auth-error', step='get', condition=e.iq['error']['condition'], code=e.iq['error']['code'])
            self.disconnect()
            return True
        fields = sorted(resp['auth']['fields'])
        out(event='fields', fields=fields)
        # Step 2: username, resource, and password or digest, as the plugin fills them.
        iq = self.Iq()
        iq['type'] = 'set'
        iq['auth']['username'] = self.requested_jid.user
        resource = self.requested_jid.resource or 'slixmpp'
        iq['auth']['resource'] = resource
        if self.digest:
            sid = bytes(self.stream_id, encoding='utf-8')
            iq['auth']['digest'] = hashlib.sha1(sid + bytes(self.password, encoding='utf-8')).hexdigest()
        else:
            iq['auth']['password'] = self.password
        try:
            await iq.send(timeout=10)
        except IqError as e:
            out(event='auth-error', step='set', condition=e.iq['error']['condition'], code=e.iq['error']['code'])
            self.disconnect()
            return True
        except IqTimeout:
            out(event='auth-error', step='set', condition='timeout', code=None)
            self.disconnect()
            return True
        # Authenticated and bound in one step: no SASL, no stream restart, no bind.
        self.features.add('auth')
        self.features.add('mechanisms')
        self.authenticated = True
        self.boundjid = JID(self.requested_jid)
        self.boundjid.resource = resource
        self.session_bind_event.set()
        self.event('session_bind', self.boundjid)
        self.sessionstarted = True
        self.event('session_start')
        return True

    async def on_start(self, _event):
        out(event='session', jid=str(self.boundjid))
        try:
            await self['xep_0199'].ping(self.boundjid.host, timeout=5)
            out(event='ping')
            self.send_presence()
            self.send_message(mto=self.boundjid.full, mbody='note to self', mtype='chat')
            await asyncio.wait_for(self.got_message.wait(), 5)
        except (IqError, IqTimeout, asyncio.TimeoutError) as e:
            out(event='session-error', error=repr(e))
        self.disconnect()


def main():
    port, jid, password = sys.argv[1:4]
    run_slixmpp(Client(jid, password, '--digest' in sys.argv), port, 30)


main()
