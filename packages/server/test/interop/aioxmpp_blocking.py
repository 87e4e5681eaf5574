"""aioxmpp as a client of Parley's Blocking Command (XEP-0191), with aioxmpp.BlockingClient.

Usage: aioxmpp_blocking.py PORT JID PASSWORD ACTION…
Logs in over STARTTLS (the test server's self-signed certificate accepted: no_verify),
lets BlockingClient check the server's disco#info for urn:xmpp:blocking and fetch the
initial blocklist (printed as "initial"), then runs the actions in order, printing one
JSON line each:
  list            → {"event": "list", "items": [...]}   (BlockingClient.blocklist)
  block:JID       → {"event": "block", "ok": true}       (block_jids)
  unblock:JID     → {"event": "unblock", "ok": true}     (unblock_jids)
  unblockall      → {"event": "unblockall", "ok": true}  (unblock_all)
  wait            waits for the push of the previous command to reach the blocklist
Pushes print {"event": "pushed", "kind": "block"|"unblock", "items": [...]}.
"""
import asyncio
import sys

import aioxmpp

from interop_common import aioxmpp_client, out, setup_logging

setup_logging('AIOXMPP_DEBUG')


async def main():
    port, jid, password = sys.argv[1], sys.argv[2], sys.argv[3]
    actions = sys.argv[4:]
    client = aioxmpp_client(jid, password, port)
    blocking = client.summon(aioxmpp.BlockingClient)
    pushed = asyncio.Event()
    initial = asyncio.get_event_loop().create_future()

    def on_initial(items):
        if not initial.done():
            initial.set_result(items)

    def on_push(kind):
        def handler(items):
            out(event='pushed', kind=kind, items=sorted(str(j) for j in items))
            pushed.set()
        return handler

    blocking.on_initial_blocklist_received.connect(on_initial)
    blocking.on_jids_blocked.connect(on_push('block'))
    blocking.on_jids_unblocked.connect(on_push('unblock'))

    async with client.connected():
        items = await asyncio.wait_for(initial, 10)
        out(event='initial', items=sorted(str(j) for j in items))
        for action in actions:
            name, _, arg = action.partition(':')
            if name == 'list':
                out(event='list', items=sorted(str(j) for j in (blocking.blocklist or ())))
            elif name == 'wait':
                await asyncio.wait_for(pushed.wait(), 10)
            else:
                pushed.clear()
                try:
                    if name == 'block':
                        await blocking.block_jids([aioxmpp.JID.fromstr(arg)])
                    elif name == 'unblock':
                        await blocking.unblock_jids([aioxmpp.JID.fromstr(arg)])
                    elif name == 'unblockall':
                        await blocking.unblock_all()
                    else:
                        raise ValueError(f'unknown action {action}')
                    out(event=name, ok=True)
                except aioxmpp.errors.XMPPError as e:
                    out(event=name, ok=False, condition=e.condition.value[1] if hasattr(e.condition, 'value') else str(e.condition))
    out(event='disconnected')


try:
    asyncio.run(asyncio.wait_for(main(), 60))
except asyncio.TimeoutError:
    out(event='timeout')
    sys.exit(3)
