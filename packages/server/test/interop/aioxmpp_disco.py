"""Service discovery and entity capabilities with an independent client: aioxmpp (Debian
python3-aioxmpp), driven by Parley's tests.

Usage: aioxmpp_disco.py PORT JID PASSWORD [--caps-node=NODE#VER] [--debug]

Logs in over STARTTLS (the server's self-signed certificate accepted: no_verify), asks the
server's disco#info with aioxmpp's DiscoClient and prints it ("info": identities, features,
and the XEP-0128 forms as {FORM_TYPE: {var: [values]}}); with --caps-node, asks it again at
that node — the caps node#ver the server advertised in its stream features — ("caps-info"). Then it becomes available:
aioxmpp's EntityCapsService puts its XEP-0115 <c/> on the presence and answers the disco#info
request for its caps node by itself ("presence" with the ver it computed). It stays online
until a line "quit" arrives on stdin (or 20 s pass), then disconnects ("disconnected").
Every event is one JSON line on stdout.
"""
import asyncio
import sys

import aioxmpp
import aioxmpp.disco
import aioxmpp.entitycaps
from aioxmpp.entitycaps import caps115

from interop_common import aioxmpp_client, out, setup_logging

setup_logging()


def forms_of(info):
    forms = {}
    for form in info.exts:
        form_type = form.get_form_type()
        fields = {}
        for field in form.fields:
            if field.var and field.var != 'FORM_TYPE':
                fields[field.var] = list(field.values)
        forms[form_type] = fields
    return forms


def info_event(event, info):
    out(event=event,
        identities=[dict(category=i.category, type=i.type_, name=i.name) for i in info.identities],
        features=sorted(info.features),
        forms=forms_of(info))


async def wait_quit(seconds):
    loop = asyncio.get_event_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), seconds)
            if not line or line.strip() == b'quit':
                return
    except asyncio.TimeoutError:
        out(event='quit-timeout')


async def main():
    port, jid, password = sys.argv[1:4]
    jid = aioxmpp.JID.fromstr(jid)
    client = aioxmpp_client(jid, password, port)
    disco = client.summon(aioxmpp.DiscoClient)
    disco_server = client.summon(aioxmpp.DiscoServer)
    caps = client.summon(aioxmpp.EntityCapsService)
    caps.xep390_support = False  # XEP-0115 only: what the server implements
    presence = client.summon(aioxmpp.PresenceServer)

    async with client.connected():
        out(event='session', jid=str(client.local_jid))
        server = aioxmpp.JID.fromstr(jid.domain)
        info = await disco.query_info(server, require_fresh=True, timeout=10)
        info_event('info', info)
        for a in sys.argv[4:]:
            if a.startswith('--caps-node='):
                # XEP-0115 §6.2/§6.3: the server's disco#info at the caps node of its stream feature.
                node = a[len('--caps-node='):]
                info_event('caps-info', await disco.query_info(server, node=node, require_fresh=True, timeout=10))

        own = caps115.hash_query(aioxmpp.disco.StaticNode.clone(disco_server).as_info_xso(), 'sha1')
        presence.set_presence(aioxmpp.PresenceState(True))
        out(event='presence', node=caps.NODE, ver=own)
        await wait_quit(20)
    out(event='disconnected')


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except Exception as e:
        out(event='error', error=repr(e))
        sys.exit(2)
