// XEP-0160 offline storage with XEP-0203 delay, across a restart of the server, with independent clients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer } from './helpers/server.ts';
import { requireSlixmpp, runSlixmppContact } from './helpers/slixmpp.ts';
import { xmppjs, xml } from './helpers/xmppjs.ts';

test('messages to an offline user are stored, survive a restart, and arrive with a delay stamp on login', async () => {
  requireSlixmpp();
  const dir = mkdtempSync(join(tmpdir(), 'parley-offline-'));
  try {
    let srv = await startTestServer({ modules: { offline: { max_messages: 3 } } }, dir);
    await srv.createUser('alice', 'alice-pw');
    await srv.createUser('bob', 'bob-pw');
    const a = await xmppjs(srv.port, 'alice', 'alice-pw', 'desk');
    const before = Date.now();
    for (const n of [1, 2, 3]) await a.send(xml('message', { to: 'bob@localhost', type: 'chat', id: `m${n}` }, xml('body', {}, `offline ${n}`)));
    // A chat state without body is not stored (XEP-0160 §3; nothing bounces either).
    await a.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' })));
    // Beyond the quota the sender is told (service-unavailable); nothing is silently lost.
    await a.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'm4' }, xml('body', {}, 'offline 4')));
    const bounced = await a.next((s) => s.is('message') && s.attrs.type === 'error' && s.attrs.id === 'm4');
    assert.ok(bounced.getChild('error')?.getChild('service-unavailable', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    // A message to an account that does not exist: service-unavailable.
    await a.send(xml('message', { to: 'nobody@localhost', type: 'chat', id: 'm5' }, xml('body', {}, '?')));
    await a.next((s) => s.is('message') && s.attrs.type === 'error' && s.attrs.id === 'm5');
    await a.stop();
    await srv.stop(false);

    srv = await startTestServer({ modules: { offline: { max_messages: 3 } } }, dir);
    try {
      const bob = runSlixmppContact(srv.port, 'bob@localhost/phone', 'bob-pw', false);
      try {
        await bob.waitEvent('ready');
        const deadline = Date.now() + 8000;
        while (bob.events.filter((e) => e.event === 'message').length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        const msgs = bob.events.filter((e) => e.event === 'message');
        assert.deepEqual(msgs.map((m) => m.body), ['offline 1', 'offline 2', 'offline 3']);
        for (const m of msgs) {
          assert.equal(m.frm, 'alice@localhost/desk');
          const stamp = /<delay xmlns="urn:xmpp:delay" from="localhost" stamp="([^"]+)"/.exec(String(m.xml))?.[1];
          assert.ok(stamp, `delay stamp in ${m.xml}`);
          assert.ok(Date.parse(stamp) >= before - 1000 && Date.parse(stamp) <= Date.now());
        }
      } finally {
        bob.kill();
      }
      // Delivered messages are gone from storage: a second login gets nothing more.
      const b2 = await xmppjs(srv.port, 'bob', 'bob-pw', 'tablet');
      await b2.send(xml('presence'));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(b2.stanzas.filter((s) => s.is('message')).length, 0);
      await b2.stop();
    } finally {
      await srv.stop(false);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
