"""slixmpp as an IM contact for Parley's RFC 6121 tests.

Usage: slixmpp_im.py PORT JID PASSWORD [--no-auto]
Logs in (SCRAM-SHA-256 over STARTTLS), fetches the roster, sends initial presence, prints
"ready", then prints one JSON line per presence stanza (with its XML), roster push and
message; with auto-authorize/auto-subscribe on (default) it accepts and returns subscription
requests the way a typical client does. Commands arrive as chat messages:
  "subscribe JID"     send a subscription request
  "roster"            print the roster
  "quit"              print the roster and disconnect
"""
import sys

import slixmpp

from interop_common import out, run_slixmpp, setup_logging, trust_self_signed

setup_logging('SLIXMPP_DEBUG')


class Contact(slixmpp.ClientXMPP):
    def __init__(self, jid, password, auto):
        super().__init__(jid, password, sasl_mech='SCRAM-SHA-256')
        trust_self_signed(self)
        self.roster.auto_authorize = auto
        self.roster.auto_subscribe = auto
        self.add_event_handler('session_start', self.on_start)
        self.add_event_handler('presence', self.on_presence)
        self.add_event_handler('roster_update', self.on_roster_update)
        self.add_event_handler('message', self.on_message)

    def roster_dict(self):
        r = self.client_roster
        return {j: {'subscription': r[j]['subscription'], 'ask': r[j]['pending_out'], 'name': r[j]['name'],
                    'groups': r[j]['groups']} for j in r if j != self.boundjid.bare}

    async def on_start(self, _):
        await self.get_roster()
        self.send_presence()
        out(event='ready', jid=str(self.boundjid), roster=self.roster_dict())

    def on_presence(self, p):
        out(event='presence', frm=str(p['from']), type=p['type'], xml=str(p))

    def on_roster_update(self, iq):
        items = {str(j): {'subscription': v['subscription'], 'ask': v['pending_out'] if 'pending_out' in v else None}
                 for j, v in iq['roster']['items'].items()}
        out(event='push', items=items, ver=iq['roster']['ver'])

    def on_message(self, msg):
        if msg['type'] not in ('chat', 'normal'):
            return
        body = msg['body']
        out(event='message', frm=str(msg['from']), body=body, xml=str(msg))
        if body.startswith('subscribe '):
            self.send_presence(pto=body.split(' ', 1)[1], ptype='subscribe')
        elif body == 'roster':
            out(event='roster', roster=self.roster_dict())
        elif body == 'quit':
            out(event='roster', roster=self.roster_dict())
            self.disconnect()


def main():
    port, jid, password = sys.argv[1:4]
    run_slixmpp(Contact(jid, password, '--no-auto' not in sys.argv), port, 60)


main()
