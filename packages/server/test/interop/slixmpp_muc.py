"""slixmpp as a multi-user chat client (XEP-0045) of Parley's MUC service, driven by the tests.

Usage: slixmpp_muc.py PORT JID PASSWORD [MUC_DOMAIN]
Logs in (SCRAM-SHA-256 over STARTTLS, the self-signed certificate accepted), loads xep_0030,
xep_0004, xep_0045, xep_0199 (and xep_0410 when this slixmpp has it), sends initial presence
and prints "ready". MUC_DOMAIN defaults to conference.<domain of JID>.

Every presence and message from the MUC domain is printed as one JSON line, read from the
stanza's XML:
  "presence" {frm, type, codes, item: {affiliation, role, jid, nick}, actor, reason,
              destroy, occupant_id, show, status, ext: [{ns, name, text, xml}], condition}
  "message"  {frm, type, id, body, subject, delay: {stamp, from}, occupant_id, codes,
              private (muc#user <x/> on a non-groupchat message), invite: {from, reason},
              password, condition}
`ext` lists the presence children that are neither jabber:client nor MUC/occupant-id
elements (application extensions such as <avatar xmlns='urn:example:game'/>).

Commands are JSON lines on stdin, {"id": ..., "cmd": ..., ...}; each ends with one "result"
event {id, cmd, ok, condition?, text?, ...}. They use slixmpp's xep_0045 API wherever it
has one:
  join {room, nick, password?, maxchars?, maxstanzas?, seconds?, since?, ext?}
        join_muc_wait → {codes, item, nick, occupants (the others), history, subject}; ext (an XML string)
        is put on every available presence to the room from then on (an 'out' filter: the
        plugin has no way to add a payload to the join presence)
  nick {room, nick, via?}       nickname change (§7.6), done when the self-presence from the
                                new nick (or an error from it) arrives: a plain presence to
                                room/new-nick (the plugin has no API for it), or with via "join"
                                the same with the MUC <x/>, as a join to the new nick would send
  presence {room, nick, ext?, show?, status?}   presence update in the room (ext replaces)
  say {room, body}              groupchat message (send_message, mtype groupchat)
  pm {to, body}                 private message to an occupant JID (mtype chat)
  subject {room, subject}       set_subject
  get_config {room}             get_room_config → {fields: {var: {type, value}}}
  set_config {room, fields}     get_room_config, form.set_values(fields), set_room_config
  instant {room}                set_room_config with an empty submit form (§10.1.2)
  set_affiliation {room, affiliation, jid?, nick?, reason?}
  set_role {room, nick, role, reason?}
  affiliations {room, affiliation}   get_affiliation_list → {jids}
  invite {room, jid, reason?}   mediated invitation
  destroy {room, reason?, altroom?}
  leave {room, nick, status?}   leave_muc
  ping {jid}                    self-ping (XEP-0410 §3): xep_0199 ping of the occupant JID
  disco_info {jid, node?}       → {identities, features, forms: {FORM_TYPE: {var: [values]}}}
  disco_items {jid}             → {items: [{jid, name}]}
  quit                          disconnect
"""
import asyncio
import importlib.util
import json
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError, IqTimeout, PresenceError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from interop_common import out, run_slixmpp, setup_logging, trust_self_signed

setup_logging('SLIXMPP_DEBUG')

NS_CLIENT = 'jabber:client'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_MUC = 'http://jabber.org/protocol/muc'
NS_MUC_USER = 'http://jabber.org/protocol/muc#user'
NS_OCCUPANT_ID = 'urn:xmpp:occupant-id:0'
NS_DELAY = 'urn:xmpp:delay'
NS_DATA = 'jabber:x:data'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'


def ns_name(tag):
    if tag.startswith('{'):
        ns, name = tag[1:].split('}', 1)
        return ns, name
    return '', tag


def error_of(xml):
    """(condition, text) of the <error/> of a stanza's XML, or (None, None)."""
    err = xml.find('{%s}error' % NS_CLIENT)
    if err is None:
        return None, None
    cond, text = None, None
    for c in err:
        ns, name = ns_name(c.tag)
        if ns == NS_STANZAS:
            if name == 'text':
                text = c.text
            else:
                cond = name
    return cond, text


def user_x(xml):
    return xml.find('{%s}x' % NS_MUC_USER)


def codes_of(x):
    if x is None:
        return []
    return sorted(int(s.get('code')) for s in x.findall('{%s}status' % NS_MUC_USER))


def item_of(x):
    if x is None:
        return None
    item = x.find('{%s}item' % NS_MUC_USER)
    if item is None:
        return None
    return {k: item.get(k) for k in ('affiliation', 'role', 'jid', 'nick') if item.get(k) is not None}


def text_of(xml, tag):
    el = xml.find(tag)
    if el is None:
        return None
    return el.text or ''


def occupant_id_of(xml):
    el = xml.find('{%s}occupant-id' % NS_OCCUPANT_ID)
    return el.get('id') if el is not None else None


def presence_event(xml):
    x = user_x(xml)
    ev = dict(event='presence', frm=xml.get('from'), type=xml.get('type') or 'available', codes=codes_of(x), item=item_of(x),
              occupant_id=occupant_id_of(xml), show=text_of(xml, '{%s}show' % NS_CLIENT), status=text_of(xml, '{%s}status' % NS_CLIENT))
    if x is not None:
        item = x.find('{%s}item' % NS_MUC_USER)
        if item is not None:
            actor = item.find('{%s}actor' % NS_MUC_USER)
            if actor is not None:
                ev['actor'] = actor.get('nick')
            reason = item.find('{%s}reason' % NS_MUC_USER)
            if reason is not None:
                ev['reason'] = reason.text or ''
        destroy = x.find('{%s}destroy' % NS_MUC_USER)
        if destroy is not None:
            ev['destroy'] = {'jid': destroy.get('jid'), 'reason': text_of(destroy, '{%s}reason' % NS_MUC_USER)}
    ext = []
    for c in xml:
        ns, name = ns_name(c.tag)
        if ns in (NS_CLIENT, NS_MUC, NS_MUC_USER, NS_OCCUPANT_ID):
            continue
        ext.append({'ns': ns, 'name': name, 'text': c.text, 'xml': ET.tostring(c, encoding='unicode')})
    ev['ext'] = ext
    if ev['type'] == 'error':
        ev['condition'], ev['text'] = error_of(xml)
    return ev


def message_event(xml):
    x = user_x(xml)
    delay = xml.find('{%s}delay' % NS_DELAY)
    ev = dict(event='message', frm=xml.get('from'), type=xml.get('type') or 'normal', id=xml.get('id'),
              body=text_of(xml, '{%s}body' % NS_CLIENT), subject=text_of(xml, '{%s}subject' % NS_CLIENT),
              delay={'stamp': delay.get('stamp'), 'from': delay.get('from')} if delay is not None else None,
              occupant_id=occupant_id_of(xml), codes=codes_of(x),
              private=x is not None and xml.get('type') in ('chat', 'normal', None) and x.find('{%s}invite' % NS_MUC_USER) is None)
    if x is not None:
        inv = x.find('{%s}invite' % NS_MUC_USER)
        if inv is not None:
            ev['invite'] = {'from': inv.get('from'), 'reason': text_of(inv, '{%s}reason' % NS_MUC_USER)}
        pw = x.find('{%s}password' % NS_MUC_USER)
        if pw is not None:
            ev['password'] = pw.text or ''
    if ev['type'] == 'error':
        ev['condition'], ev['text'] = error_of(xml)
    return ev


def form_values(form_xml):
    """{var: [values]} of a jabber:x:data form's XML."""
    fields = {}
    for f in form_xml.findall('{%s}field' % NS_DATA):
        fields[f.get('var')] = [v.text or '' for v in f.findall('{%s}value' % NS_DATA)]
    return fields


class MucClient(slixmpp.ClientXMPP):
    def __init__(self, jid, password, muc_domain):
        super().__init__(jid, password, sasl_mech='SCRAM-SHA-256')
        trust_self_signed(self)
        self.muc_domain = muc_domain
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0004')
        self.register_plugin('xep_0082')
        self.register_plugin('xep_0045')
        self.register_plugin('xep_0199')
        # slixmpp 1.8.3 (Debian bookworm) has no xep_0410; the self-ping is a xep_0199 ping anyway.
        self.has_0410 = importlib.util.find_spec('slixmpp.plugins.xep_0410') is not None
        if self.has_0410:
            self.register_plugin('xep_0410')
        # Extension elements put on every available presence to a room (room bare JID → element).
        self.ext = {}
        self.tasks = set()
        self.add_filter('out', self.add_ext)
        self.register_handler(Callback('muc-presence-log', MatchXPath('{%s}presence' % NS_CLIENT), self.on_presence))
        self.register_handler(Callback('muc-message-log', MatchXPath('{%s}message' % NS_CLIENT), self.on_message))
        self.add_event_handler('session_start', self.on_start)

    def from_muc(self, xml):
        frm = xml.get('from')
        return frm is not None and JID(frm).domain == self.muc_domain

    def on_presence(self, pres):
        if self.from_muc(pres.xml):
            out(**presence_event(pres.xml))

    def on_message(self, msg):
        if self.from_muc(msg.xml):
            out(**message_event(msg.xml))

    def add_ext(self, stanza):
        if isinstance(stanza, slixmpp.Presence) and stanza.xml.get('type') is None:
            el = self.ext.get(stanza['to'].bare)
            if el is not None:
                if stanza.xml.find(el.tag) is None:
                    stanza.xml.append(ET.fromstring(ET.tostring(el)))
        return stanza

    async def on_start(self, _):
        self.send_presence()
        out(event='ready', jid=str(self.boundjid), xep_0410=self.has_0410)
        self.spawn(self.read_commands())

    def spawn(self, coro):
        """Runs a coroutine as a task, keeping a reference (asyncio holds tasks weakly: an
        unreferenced pending task can be garbage-collected mid-way)."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def read_commands(self):
        loop = asyncio.get_event_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                self.disconnect()
                return
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
            except ValueError:
                out(event='bad-command', line=line.decode('utf8', 'replace'))
                continue
            self.spawn(self.run_command(cmd))

    async def run_command(self, cmd):
        name = cmd.get('cmd')
        res = dict(event='result', id=cmd.get('id'), cmd=name, ok=True)
        try:
            fn = getattr(self, 'cmd_' + str(name).replace('-', '_'), None)
            if fn is None:
                raise ValueError('unknown command %r' % name)
            extra = await fn(cmd)
            if extra:
                res.update(extra)
        except IqError as e:
            res['ok'] = False
            res['condition'], res['text'] = error_of(e.iq.xml)
        except IqTimeout:
            res['ok'] = False
            res['condition'] = 'timeout'
        except PresenceError as e:
            res['ok'] = False
            res['condition'], res['text'] = error_of(e.presence.xml)
        except asyncio.TimeoutError:
            res['ok'] = False
            res['condition'] = 'timeout'
        except Exception as e:  # a bug of the driver or a usage error of the test
            res['ok'] = False
            res['condition'] = 'exception'
            res['text'] = '%s: %s' % (type(e).__name__, e)
        out(**res)

    # --- commands ---

    async def cmd_join(self, c):
        room = JID(c['room'])
        if c.get('ext'):
            self.ext[room.bare] = ET.fromstring(c['ext'])
        kw = {}
        for k in ('maxchars', 'maxstanzas', 'seconds'):
            if c.get(k) is not None:
                kw[k] = int(c[k])
        if c.get('since'):
            kw['since'] = self['xep_0082'].parse(c['since'])
        pres, subject, occupants, history = await self['xep_0045'].join_muc_wait(
            room, c['nick'], password=c.get('password'), timeout=c.get('timeout', 10), **kw)
        x = user_x(pres.xml)
        return dict(
            frm=str(pres['from']), nick=pres['from'].resource, codes=codes_of(x), item=item_of(x),
            occupant_id=occupant_id_of(pres.xml),
            occupants=[p['from'].resource for p in occupants if p['from'] != pres['from']],
            history=[dict(frm=str(m['from']), body=m['body'],
                          stamp=m.xml.find('{%s}delay' % NS_DELAY).get('stamp'),
                          delay_from=m.xml.find('{%s}delay' % NS_DELAY).get('from')) for m in history],
            subject={'frm': str(subject['from']), 'text': subject['subject']},
        )

    async def cmd_nick(self, c):
        room = JID(c['room'])
        target = '%s/%s' % (room.bare, c['nick'])
        done = asyncio.get_event_loop().create_future()

        def on_pres(p):
            if done.done() or str(p['from']) != target:
                return
            if p.xml.get('type') == 'error':
                done.set_result(p)
            elif p.xml.get('type') is None and 110 in codes_of(user_x(p.xml)):
                done.set_result(p)

        handler = Callback('nick-%s' % c.get('id'), MatchXPath('{%s}presence' % NS_CLIENT), on_pres)
        self.register_handler(handler)
        try:
            pres = self.make_presence(pto=target)
            if c.get('via') == 'join':
                # The presence join_muc_wait sends, with the MUC <x/>. join_muc_wait itself cannot
                # change a nickname in slixmpp 1.8.3: it takes the 303 (which has 110) for the
                # join's self-presence, and the self-presence from the new nick then sets its
                # future a second time: InvalidStateError, and slixmpp answers the room's presence
                # with an <undefined-condition/> presence error.
                pres.enable('muc_join')
            pres.send()
            p = await asyncio.wait_for(done, c.get('timeout', 10))
        finally:
            self.remove_handler('nick-%s' % c.get('id'))
        if p.xml.get('type') == 'error':
            raise PresenceError(p)
        self['xep_0045'].our_nicks[room.bare] = c['nick']
        return dict(frm=str(p['from']), codes=codes_of(user_x(p.xml)), item=item_of(user_x(p.xml)))

    async def cmd_presence(self, c):
        room = JID(c['room'])
        if 'ext' in c:
            if c['ext']:
                self.ext[room.bare] = ET.fromstring(c['ext'])
            else:
                self.ext.pop(room.bare, None)
        self.send_presence(pto='%s/%s' % (room.bare, c['nick']), pshow=c.get('show'), pstatus=c.get('status'))

    async def cmd_say(self, c):
        self.send_message(mto=JID(c['room']), mbody=c['body'], mtype='groupchat')

    async def cmd_pm(self, c):
        self.send_message(mto=JID(c['to']), mbody=c['body'], mtype='chat')

    async def cmd_subject(self, c):
        self['xep_0045'].set_subject(JID(c['room']), c['subject'])

    async def cmd_get_config(self, c):
        form = await self['xep_0045'].get_room_config(JID(c['room']))
        fields = {}
        for var, f in form.get_fields().items():
            fields[var] = {'type': f['type'], 'value': f.get_value(convert=False)}
        return dict(form_type=form['type'], fields=fields)

    async def cmd_set_config(self, c):
        room = JID(c['room'])
        form = await self['xep_0045'].get_room_config(room)
        form.set_values(c['fields'])
        await self['xep_0045'].set_room_config(room, form)

    async def cmd_instant(self, c):
        form = self['xep_0004'].make_form(ftype='submit')
        await self['xep_0045'].set_room_config(JID(c['room']), form)

    async def cmd_set_affiliation(self, c):
        await self['xep_0045'].set_affiliation(JID(c['room']), c['affiliation'], jid=JID(c['jid']) if c.get('jid') else None,
                                               nick=c.get('nick'), reason=c.get('reason', ''))

    async def cmd_set_role(self, c):
        await self['xep_0045'].set_role(JID(c['room']), c['nick'], c['role'], reason=c.get('reason', ''))

    async def cmd_affiliations(self, c):
        jids = await self['xep_0045'].get_affiliation_list(JID(c['room']), c['affiliation'])
        return dict(jids=sorted(str(j) for j in jids))

    async def cmd_invite(self, c):
        self['xep_0045'].invite(JID(c['room']), JID(c['jid']), reason=c.get('reason', ''))

    async def cmd_destroy(self, c):
        await self['xep_0045'].destroy(JID(c['room']), reason=c.get('reason', ''), altroom=JID(c['altroom']) if c.get('altroom') else None)

    async def cmd_leave(self, c):
        room = JID(c['room'])
        self.ext.pop(room.bare, None)
        self['xep_0045'].leave_muc(room, c['nick'], msg=c.get('status', ''))

    async def cmd_ping(self, c):
        jid = JID(c['jid'])
        # XEP-0410 §3 on the wire is a XEP-0199 ping of one's own occupant JID; slixmpp's
        # xep_0410 (when present) only schedules such pings, so the ping is xep_0199's.
        await self['xep_0199'].ping(jid, timeout=c.get('timeout', 10))
        return dict(via='xep_0199')

    async def cmd_disco_info(self, c):
        iq = await self['xep_0030'].get_info(jid=JID(c['jid']), node=c.get('node'), cached=False, timeout=10)
        q = iq.xml.find('{%s}query' % NS_DISCO_INFO)
        forms = {}
        for x in q.findall('{%s}x' % NS_DATA):
            vals = form_values(x)
            ft = (vals.pop('FORM_TYPE', None) or [''])[0]
            forms[ft] = vals
        return dict(
            identities=[{'category': i.get('category'), 'type': i.get('type'), 'name': i.get('name')} for i in q.findall('{%s}identity' % NS_DISCO_INFO)],
            features=sorted(f.get('var') for f in q.findall('{%s}feature' % NS_DISCO_INFO)),
            forms=forms,
        )

    async def cmd_disco_items(self, c):
        iq = await self['xep_0030'].get_items(jid=JID(c['jid']), node=c.get('node'), timeout=10)
        return dict(items=sorted(({'jid': str(j), 'name': n} for j, _node, n in iq['disco_items']['items']), key=lambda i: i['jid']))

    async def cmd_quit(self, c):
        asyncio.get_event_loop().call_later(0.05, self.disconnect)


def main():
    port, jid, password = sys.argv[1:4]
    muc_domain = sys.argv[4] if len(sys.argv) > 4 and not sys.argv[4].startswith('--') else 'conference.' + JID(jid).domain
    run_slixmpp(MucClient(jid, password, muc_domain), port, 120)


main()
