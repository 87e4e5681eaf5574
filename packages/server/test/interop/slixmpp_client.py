"""An independent XMPP client (slixmpp, Debian python3-slixmpp) driven by Parley's tests.

Usage: slixmpp_client.py PORT JID PASSWORD MECHANISM SCENARIO [ARGS...]
Scenarios:
  login                  log in, ping the server (XEP-0199), print the result, disconnect
  recv N                 log in, send initial presence, print "READY", wait for N chat messages,
                         answer each with "echo: <body>" to its sender's full JID, then disconnect
Every result is one JSON line on stdout.
"""
import asyncio
import sys

import slixmpp

from interop_common import out, report_auth_failure, run_slixmpp, setup_logging, trust_self_signed

setup_logging()


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, mechanism, scenario, args):
        super().__init__(jid, password, sasl_mech=mechanism)
        self.scenario, self.args = scenario, args
        self.register_plugin('xep_0199')
        self.register_plugin('xep_0030')
        trust_self_signed(self)
        self.received = 0
        self.add_event_handler('session_start', self.on_start)
        report_auth_failure(self)
        self.add_event_handler('message', self.on_message)

    async def on_start(self, _event):
        out(event='session', jid=str(self.boundjid), tls=self.is_ssl if hasattr(self, 'is_ssl') else None)
        if self.scenario == 'login':
            rtt = await self['xep_0199'].ping(self.boundjid.domain, timeout=5)
            info = await self['xep_0030'].get_info(jid=self.boundjid.domain, timeout=5)
            features = sorted(info['disco_info']['features'])
            out(event='ping', rtt=rtt, features=features)
            self.disconnect()
        elif self.scenario == 'recv':
            self.send_presence()
            out(event='ready')

    def on_message(self, msg):
        if msg['type'] not in ('chat', 'normal'):
            return
        out(event='message', frm=str(msg['from']), to=str(msg['to']), body=msg['body'])
        msg.reply('echo: ' + msg['body']).send()
        self.received += 1
        if self.received >= int(self.args[0]):
            asyncio.get_event_loop().call_later(0.3, self.disconnect)


def main():
    port, jid, password, mechanism, scenario = sys.argv[1:6]
    args = [a for a in sys.argv[6:] if a != '--debug']
    run_slixmpp(Client(jid, password, mechanism, scenario, args), port, 30)


main()
