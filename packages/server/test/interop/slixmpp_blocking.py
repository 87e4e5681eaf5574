"""slixmpp as a client of Parley's Blocking Command (XEP-0191) and Last Activity (XEP-0012).

Usage: slixmpp_blocking.py PORT JID PASSWORD
Logs in (SCRAM-SHA-256 over STARTTLS), fetches the roster, sends initial presence, retrieves
the blocklist with slixmpp's xep_0191 plugin (so it gets block/unblock pushes) and prints
"ready" with it. Then prints one JSON line per block/unblock push, presence, message and
message error. Commands arrive as chat messages from the account's own other resources:
  "block JID [JID…]"     block (xep_0191.block)           → "result" {cmd, ok, condition}
  "unblock JID [JID…]"   unblock (xep_0191.unblock)
  "unblockall"           unblock all (an empty <unblock/>)
  "blocklist"            retrieve the blocklist             → "blocklist" {items}
  "last JID"             XEP-0012 query (xep_0012)          → "last" {seconds, status} or {condition}
  "send JID TEXT"        send a chat message to JID
  "quit"                 disconnect
"""
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

from interop_common import out, run_slixmpp, setup_logging, trust_self_signed

setup_logging('SLIXMPP_DEBUG')

NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'


def error_of(stanza):
    """(condition, application condition tag or None) of an error stanza."""
    err = stanza.xml.find('{jabber:client}error')
    if err is None:
        return None, None
    cond, app = None, None
    for c in err:
        if c.tag.startswith('{%s}' % NS_STANZAS):
            if not c.tag.endswith('}text'):
                cond = c.tag.split('}', 1)[1]
        else:
            app = c.tag
    return cond, app


class Blocker(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password, sasl_mech='SCRAM-SHA-256')
        trust_self_signed(self)
        self.roster.auto_authorize = False
        self.roster.auto_subscribe = False
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0191')
        self.register_plugin('xep_0012')
        self.add_event_handler('session_start', self.on_start)
        self.add_event_handler('blocked', lambda iq: out(event='push', kind='block', items=sorted(str(j) for j in iq['block']['items'])))
        self.add_event_handler('unblocked', lambda iq: out(event='push', kind='unblock', items=sorted(str(j) for j in iq['unblock']['items'])))
        self.add_event_handler('presence', lambda p: out(event='presence', frm=str(p['from']), type=p['type']))
        self.add_event_handler('message', self.on_message)

    async def on_start(self, _):
        await self.get_roster()
        self.send_presence()
        res = await self['xep_0191'].get_blocked()
        out(event='ready', jid=str(self.boundjid), blocklist=sorted(str(j) for j in res['blocklist']['items']))

    async def command(self, name, fn):
        try:
            await fn()
            out(event='result', cmd=name, ok=True)
        except IqError as e:
            cond, app = error_of(e.iq)
            out(event='result', cmd=name, ok=False, condition=cond, app=app)
        except IqTimeout:
            out(event='result', cmd=name, ok=False, condition='timeout')

    async def on_message(self, msg):
        if msg['type'] == 'error':
            cond, app = error_of(msg)
            out(event='message-error', frm=str(msg['from']), condition=cond, app=app, body=msg['body'])
            return
        body = msg['body']
        out(event='message', frm=str(msg['from']), body=body)
        if msg['from'].bare != self.boundjid.bare:
            return  # Commands come only from the account's own resources.
        words = body.split()
        if not words:
            return
        cmd, args = words[0], words[1:]
        if cmd == 'block':
            await self.command('block', lambda: self['xep_0191'].block(args))
        elif cmd == 'unblock':
            await self.command('unblock', lambda: self['xep_0191'].unblock(args))
        elif cmd == 'unblockall':
            await self.command('unblockall', lambda: self['xep_0191'].unblock([]))
        elif cmd == 'blocklist':
            res = await self['xep_0191'].get_blocked()
            out(event='blocklist', items=sorted(str(j) for j in res['blocklist']['items']))
        elif cmd == 'last':
            try:
                res = await self['xep_0012'].get_last_activity(args[0])
                out(event='last', jid=args[0], seconds=res['last_activity']['seconds'], status=res['last_activity']['status'])
            except IqError as e:
                cond, _ = error_of(e.iq)
                out(event='last', jid=args[0], condition=cond)
        elif cmd == 'send':
            self.send_message(mto=args[0], mbody=' '.join(args[1:]), mtype='chat')
        elif cmd == 'quit':
            self.disconnect()


def main():
    port, jid, password = sys.argv[1:4]
    run_slixmpp(Blocker(jid, password), port, 60)


main()
