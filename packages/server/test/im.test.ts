// RFC 6121 with independent clients: roster, subscriptions, presence, delivery to bare JIDs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { requireSlixmpp, runSlixmppContact } from './helpers/slixmpp.ts';
import { xmppjs, xml, type Xjs } from './helpers/xmppjs.ts';
import type { Element } from '@xmpp/client';

const ROSTER = 'jabber:iq:roster';
const isPush = (jid: string, pred: (item: Element) => boolean = () => true) => (s: Element) =>
  s.is('iq') && s.attrs.type === 'set' && !!s.getChild('query', ROSTER)?.getChild('item') &&
  s.getChild('query', ROSTER)!.getChild('item')!.attrs.jid === jid && pred(s.getChild('query', ROSTER)!.getChild('item')!);

async function rosterOf(c: Xjs): Promise<Record<string, { subscription: string; ask?: string; name?: string; groups: string[] }>> {
  const res = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
  const out: Record<string, { subscription: string; ask?: string; name?: string; groups: string[] }> = {};
  for (const i of res.getChild('query', ROSTER)?.children ?? []) {
    if (typeof i === 'string') continue;
    out[i.attrs.jid!] = {
      subscription: i.attrs.subscription!,
      ...(i.attrs.ask ? { ask: i.attrs.ask } : {}),
      ...(i.attrs.name ? { name: i.attrs.name } : {}),
      groups: i.children.filter((g): g is Element => typeof g !== 'string').map((g) => g.getChildText('') ?? String(g.children[0] ?? '')),
    };
  }
  return out;
}

describe('RFC 6121 instant messaging and presence', () => {
  let srv: TestServer;
  before(async () => {
    requireSlixmpp();
    srv = await startTestServer();
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) await srv.createUser(u, `${u}-pw`);
  });
  after(() => srv.stop());

  test('roster set/get/remove with pushes, groups and versions (xmpp.js)', async () => {
    const a = await xmppjs(srv.port, 'alice', 'alice-pw', 'r1');
    const a2 = await xmppjs(srv.port, 'alice', 'alice-pw', 'r2');
    try {
      const first = await a.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER, ver: '' })));
      const ver0 = first.getChild('query', ROSTER)!.attrs.ver;
      assert.ok(ver0 !== undefined, 'roster result carries ver (XEP-0237)');
      await a2.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
      await a.iq(
        xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid: 'zoe@example.net', name: 'Zoe' }, xml('group', {}, 'Friends'), xml('group', {}, 'Work')))),
      );
      // Both interested resources get the push.
      for (const c of [a, a2]) {
        const push = await c.next(isPush('zoe@example.net'));
        assert.equal(push.attrs.from, undefined === push.attrs.from ? undefined : 'alice@localhost');
        const item = push.getChild('query', ROSTER)!.getChild('item')!;
        assert.equal(item.attrs.name, 'Zoe');
        assert.equal(item.attrs.subscription, 'none');
      }
      const r = await rosterOf(a);
      assert.deepEqual(r['zoe@example.net']?.subscription, 'none');
      // Same version → empty result (XEP-0237 §2.3).
      const now = (await a.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })))).getChild('query', ROSTER)!.attrs.ver!;
      const same = await a.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER, ver: now })));
      assert.equal(same.getChild('query'), undefined);
      // Errors: two items → bad-request; empty group → not-acceptable; others' roster → forbidden.
      await assert.rejects(
        a.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid: 'x@y' }), xml('item', { jid: 'z@y' })))),
        (e: Error & { condition?: string }) => e.condition === 'bad-request',
      );
      await assert.rejects(
        a.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid: 'x@y' }, xml('group', {}, ''))))),
        (e: Error & { condition?: string }) => e.condition === 'not-acceptable',
      );
      await assert.rejects(
        a.iq(xml('iq', { type: 'get', to: 'bob@localhost' }, xml('query', { xmlns: ROSTER }))),
        (e: Error & { condition?: string }) => e.condition === 'forbidden',
      );
      // Remove, with a push carrying subscription='remove'; an incremental get from the old version replays it.
      await a.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid: 'zoe@example.net', subscription: 'remove' }))));
      await a2.next(isPush('zoe@example.net', (i) => i.attrs.subscription === 'remove'));
      assert.equal((await rosterOf(a))['zoe@example.net'], undefined);
      const inc = await a2.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER, ver: now })));
      assert.equal(inc.getChild('query'), undefined);
      await a2.next(isPush('zoe@example.net', (i) => i.attrs.subscription === 'remove'), 3000, 'incremental push');
    } finally {
      await a.stop();
      await a2.stop();
    }
  });

  test('subscription handshake both ways between xmpp.js and slixmpp, with roster pushes on each side', async () => {
    const bob = runSlixmppContact(srv.port, 'bob@localhost/sli', 'bob-pw'); // auto-authorize + auto-subscribe
    const a = await xmppjs(srv.port, 'alice', 'alice-pw', 'desk');
    try {
      await bob.waitEvent('ready');
      await a.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
      await a.send(xml('presence'));
      await a.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
      // RFC 6121 §3.1.2: alice's item goes to none + ask=subscribe.
      await a.next(isPush('bob@localhost', (i) => i.attrs.ask === 'subscribe' && i.attrs.subscription === 'none'), 5000, 'ask push');
      // Bob (slixmpp) approves: alice's item becomes 'to' (§3.1.5), and she gets bob's presence.
      await a.next(isPush('bob@localhost', (i) => i.attrs.subscription === 'to' && !i.attrs.ask), 8000, 'subscription=to push');
      await a.next((s) => s.is('presence') && s.attrs.type === 'subscribed' && s.attrs.from === 'bob@localhost', 5000, 'subscribed');
      await a.next((s) => s.is('presence') && !s.attrs.type && s.attrs.from === 'bob@localhost/sli', 5000, "bob's presence");
      // Bob subscribes back (auto_subscribe); alice approves.
      const req = await a.next((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'bob@localhost', 8000, 'subscribe from bob');
      assert.ok(req);
      await a.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
      await a.next(isPush('bob@localhost', (i) => i.attrs.subscription === 'both'), 5000, 'subscription=both push');
      // Bob's side: his pushes and final roster (as slixmpp sees it).
      await a.send(xml('message', { to: 'bob@localhost/sli', type: 'chat' }, xml('body', {}, 'quit')));
      const end = await bob.done;
      const pushes = end.events.filter((e) => e.event === 'push').map((e) => (e.items as Record<string, { subscription: string }>)['alice@localhost']?.subscription);
      assert.ok(pushes.includes('from'), `bob got a push with subscription=from: ${JSON.stringify(end.events)}`);
      const roster = end.events.filter((e) => e.event === 'roster').pop()!.roster as Record<string, { subscription: string }>;
      assert.equal(roster['alice@localhost']?.subscription, 'both');
      // Bob saw alice's presence once both were subscribed.
      assert.ok(end.events.some((e) => e.event === 'presence' && e.frm === 'alice@localhost/desk' && e.type === 'available'));
      // Alice sees bob go offline (§4.5.2 unavailable on logout).
      await a.next((s) => s.is('presence') && s.attrs.type === 'unavailable' && s.attrs.from === 'bob@localhost/sli', 5000, 'unavailable');
      assert.equal((await rosterOf(a))['bob@localhost']?.subscription, 'both');
    } finally {
      bob.kill();
      await a.stop();
    }
  });

  test('a custom presence extension reaches a contact who comes online later, unchanged (probe)', async () => {
    // carol and dave become mutual contacts.
    const c = await xmppjs(srv.port, 'carol', 'carol-pw', 'web');
    const d0 = await xmppjs(srv.port, 'dave', 'dave-pw', 'phone');
    try {
      for (const x of [c, d0]) {
        await x.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
        await x.send(xml('presence'));
      }
      await c.send(xml('presence', { to: 'dave@localhost', type: 'subscribe' }));
      await d0.next((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'carol@localhost');
      await d0.send(xml('presence', { to: 'carol@localhost', type: 'subscribed' }));
      await c.next(isPush('dave@localhost', (i) => i.attrs.subscription === 'to'));
      await d0.send(xml('presence', { to: 'carol@localhost', type: 'subscribe' }));
      await c.next((s) => s.is('presence') && s.attrs.type === 'subscribe');
      await c.send(xml('presence', { to: 'dave@localhost', type: 'subscribed' }));
      await c.next(isPush('dave@localhost', (i) => i.attrs.subscription === 'both'));
    } finally {
      await d0.stop();
    }
    // Carol publishes a presence with an application's extension.
    const ext =
      "<user xmlns='urn:example:profile'><name>Carol &amp; Co</name><level n='7'/><avatar hash='abc'><tag>x</tag></avatar></user>";
    await c.send(xml('presence', {}, xml('show', {}, 'chat'), xml('status', {}, 'Playing')));
    const raw = c.x as unknown as { write(s: string): Promise<void> };
    await raw.write(`<presence><show>away</show>${ext}</presence>`);
    // Dave logs in afterwards with slixmpp and gets it in reply to his probe.
    const dave = runSlixmppContact(srv.port, 'dave@localhost/later', 'dave-pw', false);
    try {
      const ev = await dave.waitEvent('ready');
      assert.ok(ev);
      const deadline = Date.now() + 5000;
      let seen: string | undefined;
      while (!seen && Date.now() < deadline) {
        seen = dave.events.find((e) => e.event === 'presence' && e.frm === 'carol@localhost/web' && String(e.xml).includes('urn:example:profile'))?.xml as string | undefined;
        if (!seen) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(seen, `dave saw carol's presence: ${JSON.stringify(dave.events)}`);
      assert.match(seen, /<user xmlns="urn:example:profile"><name>Carol &amp; Co<\/name><level n="7" \/><avatar hash="abc"><tag>x<\/tag><\/avatar><\/user>/);
      assert.match(seen, /<show>away<\/show>/);
    } finally {
      dave.kill();
      await c.stop();
    }
  });

  test('messages to a bare JID go to the highest-priority resources; negative priority gets none', async () => {
    const e1 = await xmppjs(srv.port, 'erin', 'erin-pw', 'one');
    const e2 = await xmppjs(srv.port, 'erin', 'erin-pw', 'two');
    const e3 = await xmppjs(srv.port, 'erin', 'erin-pw', 'neg');
    const f = await xmppjs(srv.port, 'frank', 'frank-pw', 'x');
    try {
      await e1.send(xml('presence', {}, xml('priority', {}, '5')));
      await e2.send(xml('presence', {}, xml('priority', {}, '5')));
      await e3.send(xml('presence', {}, xml('priority', {}, '-1')));
      await new Promise((r) => setTimeout(r, 200));
      await f.send(xml('message', { to: 'erin@localhost', type: 'chat' }, xml('body', {}, 'to both')));
      for (const c of [e1, e2]) {
        const m = await c.next((s) => s.is('message') && s.getChildText('body') === 'to both');
        assert.equal(m.attrs.from, 'frank@localhost/x');
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(e3.stanzas.filter((s) => s.is('message')).length, 0, 'negative priority receives no bare-JID messages');
      // Lower one resource: only the other gets chat messages now.
      await e2.send(xml('presence', {}, xml('priority', {}, '1')));
      await new Promise((r) => setTimeout(r, 200));
      await f.send(xml('message', { to: 'erin@localhost', type: 'chat' }, xml('body', {}, 'to one')));
      await e1.next((s) => s.is('message') && s.getChildText('body') === 'to one');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(e2.stanzas.filter((s) => s.is('message') && s.getChildText('body') === 'to one').length, 0);
      // A full JID that is gone: chat falls back to the bare JID (RFC 6121 §8.5.3.2.1).
      await f.send(xml('message', { to: 'erin@localhost/gone', type: 'chat' }, xml('body', {}, 'fallback')));
      await e1.next((s) => s.is('message') && s.getChildText('body') === 'fallback');
    } finally {
      for (const c of [e1, e2, e3, f]) await c.stop();
    }
  });

  test('pending requests are delivered again at next login; pre-approval; cancel and unsubscribe update both rosters', async () => {
    await srv.createUser('gina', 'gina-pw');
    await srv.createUser('hank', 'hank-pw');
    const g = await xmppjs(srv.port, 'gina', 'gina-pw', 'a');
    try {
      await g.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
      await g.send(xml('presence'));
      // hank is offline: the request waits (RFC 6121 §3.1.3).
      await g.send(xml('presence', { to: 'hank@localhost', type: 'subscribe' }, xml('status', {}, 'it is gina')));
      await g.next(isPush('hank@localhost', (i) => i.attrs.ask === 'subscribe'));
      const h = await xmppjs(srv.port, 'hank', 'hank-pw', 'b');
      try {
        await h.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
        // Pre-approve gina's future subscription before answering (§3.4): no roster change yet for a request that exists,
        // so first answer the pending one.
        await h.send(xml('presence'));
        const req = await h.next((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'gina@localhost', 5000, 'redelivered request');
        assert.equal(req.getChildText('status'), 'it is gina');
        await h.send(xml('presence', { to: 'gina@localhost', type: 'subscribed' }));
        await h.next(isPush('gina@localhost', (i) => i.attrs.subscription === 'from'));
        await g.next(isPush('hank@localhost', (i) => i.attrs.subscription === 'to'));
        // gina pre-approves hank (§3.4): item gets approved='true'; hank's request is then accepted without asking her.
        await g.send(xml('presence', { to: 'hank@localhost', type: 'subscribed' }));
        await g.next(isPush('hank@localhost', (i) => i.attrs.approved === 'true'));
        await h.send(xml('presence', { to: 'gina@localhost', type: 'subscribe' }));
        await h.next(isPush('gina@localhost', (i) => i.attrs.subscription === 'both'), 5000, 'pre-approved → both');
        await g.next(isPush('hank@localhost', (i) => i.attrs.subscription === 'both'));
        assert.equal(g.stanzas.filter((s) => s.is('presence') && s.attrs.type === 'subscribe').length, 0, 'no request shown for a pre-approved subscription');
        // hank unsubscribes from gina (§3.3): hank both→from... (he loses 'to'), gina both→to (she loses 'from').
        await h.send(xml('presence', { to: 'gina@localhost', type: 'unsubscribe' }));
        await h.next(isPush('gina@localhost', (i) => i.attrs.subscription === 'from'));
        await g.next(isPush('hank@localhost', (i) => i.attrs.subscription === 'to'));
        // gina cancels hank's remaining subscription to her? She has 'to' (she sees hank). hank cancels it (§3.2): unsubscribed.
        await h.send(xml('presence', { to: 'gina@localhost', type: 'unsubscribed' }));
        await h.next(isPush('gina@localhost', (i) => i.attrs.subscription === 'none'));
        await g.next(isPush('hank@localhost', (i) => i.attrs.subscription === 'none'));
        await g.next((s) => s.is('presence') && s.attrs.type === 'unavailable' && s.attrs.from === 'hank@localhost/b', 5000, 'unavailable after cancel');
      } finally {
        await h.stop();
      }
    } finally {
      await g.stop();
    }
  });

  test('directed presence: the recipient gets unavailable when the sender disconnects (§4.6)', async () => {
    await srv.createUser('ivan', 'ivan-pw');
    await srv.createUser('jill', 'jill-pw');
    const i = await xmppjs(srv.port, 'ivan', 'ivan-pw', 'x');
    const j = await xmppjs(srv.port, 'jill', 'jill-pw', 'y');
    try {
      await i.send(xml('presence'));
      await j.send(xml('presence'));
      await i.send(xml('presence', { to: 'jill@localhost/y' }, xml('status', {}, 'hi there')));
      const p = await j.next((s) => s.is('presence') && s.attrs.from === 'ivan@localhost/x' && !s.attrs.type);
      assert.equal(p.getChildText('status'), 'hi there');
      await i.stop();
      await j.next((s) => s.is('presence') && s.attrs.from === 'ivan@localhost/x' && s.attrs.type === 'unavailable', 5000, 'unavailable to directed recipient');
    } finally {
      await j.stop();
    }
  });
});

test('the roster size limit (modules.roster.max_items) refuses one more contact with not-allowed', async () => {
  const srv = await startTestServer({ modules: { roster: { max_items: 2 } } });
  try {
    await srv.createUser('kim', 'kim-pw');
    const k = await xmppjs(srv.port, 'kim', 'kim-pw', 'r');
    try {
      const add = (jid: string) => k.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid }))));
      await add('a@example.org');
      await add('b@example.org');
      await assert.rejects(add('c@example.org'), (e: Error & { condition?: string }) => e.condition === 'not-allowed');
      // Changing an existing item is still fine.
      await k.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: ROSTER }, xml('item', { jid: 'a@example.org', name: 'A' }))));
      assert.deepEqual(Object.keys(await rosterOf(k)).sort(), ['a@example.org', 'b@example.org']);
    } finally {
      await k.stop();
    }
  } finally {
    await srv.stop();
  }
});

test('removing an account (XEP-0077) cancels its subscriptions: contacts get roster pushes to none', async () => {
  const srv = await startTestServer();
  try {
    await srv.createUser('lena', 'lena-pw');
    await srv.createUser('mike', 'mike-pw');
    const l = await xmppjs(srv.port, 'lena', 'lena-pw', 'r');
    const m = await xmppjs(srv.port, 'mike', 'mike-pw', 'r');
    try {
      for (const c of [l, m]) {
        await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
        await c.send(xml('presence'));
      }
      await l.send(xml('presence', { to: 'mike@localhost', type: 'subscribe' }));
      await m.next((s) => s.is('presence') && s.attrs.type === 'subscribe');
      await m.send(xml('presence', { to: 'lena@localhost', type: 'subscribed' }));
      await m.send(xml('presence', { to: 'lena@localhost', type: 'subscribe' }));
      await l.next((s) => s.is('presence') && s.attrs.type === 'subscribe');
      await l.send(xml('presence', { to: 'mike@localhost', type: 'subscribed' }));
      await m.next(isPush('lena@localhost', (i) => i.attrs.subscription === 'both'));
      await l.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:register' }, xml('remove'))));
      await m.next(isPush('lena@localhost', (i) => i.attrs.subscription === 'none'), 5000, 'push to none');
      // Mike no longer sees lena (RFC 6121 §3.2.3): unavailable from her bare JID, covering every resource.
      await m.next((s) => s.is('presence') && s.attrs.type === 'unavailable' && s.attrs.from?.startsWith('lena@localhost') === true, 5000, 'unavailable');
      assert.equal(await srv.server.accounts.exists('lena'), false);
    } finally {
      await l.stop();
      await m.stop();
    }
  } finally {
    await srv.stop();
  }
});
