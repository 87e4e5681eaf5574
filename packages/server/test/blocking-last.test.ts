// Blocking Command (XEP-0191) and Last Activity (XEP-0012) with independent clients:
// slixmpp (xep_0191, xep_0012 plugins), aioxmpp (BlockingClient) and xmpp.js.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Element } from '@xmpp/client';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { requireAioxmpp, requireSlixmpp, runAioxmppBlocking, runSlixmppBlocking, type SliEvent, type SliRun } from './helpers/slixmpp.ts';
import { xmppjs, xml, type Xjs } from './helpers/xmppjs.ts';

const BLOCKING = 'urn:xmpp:blocking';
const BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';
const LAST = 'jabber:iq:last';
const ROSTER = 'jabber:iq:roster';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

/** The child elements named `name` (the test typings of @xmpp/client have no getChildren). */
const kids = (el: Element, name: string): Element[] => el.children.filter((c): c is Element => typeof c !== 'string' && c.name === name);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Cond = Error & { condition?: string; application?: Element };
const condition = (c: string) => (e: Cond) => e.condition === c;

/** Waits for an event of a slixmpp/aioxmpp run matching `pred` (not only the first of its name). */
async function waitFor(run: SliRun, pred: (e: SliEvent) => boolean, what: string, ms = 10000): Promise<SliEvent> {
  const deadline = Date.now() + ms;
  for (;;) {
    const e = run.events.find(pred);
    if (e) return e;
    if (Date.now() > deadline) throw new Error(`no ${what}; events ${JSON.stringify(run.events)}`);
    await pause(50);
  }
}

const isPush = (kind: 'block' | 'unblock', jids: string[]) => (s: Element) => {
  if (!s.is('iq') || s.attrs.type !== 'set') return false;
  const cmd = s.getChild(kind, BLOCKING);
  if (!cmd) return false;
  const got = kids(cmd, 'item').map((i) => i.attrs.jid as string).sort();
  return JSON.stringify(got) === JSON.stringify([...jids].sort());
};
const presenceFrom = (from: string, type?: string) => (s: Element) => s.is('presence') && s.attrs.from === from && s.attrs.type === type;
const messageWith = (body: string) => (s: Element) => s.is('message') && s.attrs.type !== 'error' && s.getChildText('body') === body;
const errorWith = (body: string) => (s: Element) => s.is('message') && s.attrs.type === 'error' && s.getChildText('body') === body;
const errorCondition = (s: Element) => s.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === STANZAS && c.name !== 'text')?.name;

/** A chat message from one of the account's resources to the slixmpp resource: a command for the driver. */
const command = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', {}, body));

/** Makes two accounts mutual contacts (subscription both), RFC 6121 §3.1. */
async function befriend(port: number, a: [string, string], b: [string, string]): Promise<void> {
  const x = await xmppjs(port, a[0], a[1], 'setup');
  const y = await xmppjs(port, b[0], b[1], 'setup');
  try {
    for (const c of [x, y]) {
      await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
      await c.send(xml('presence'));
    }
    const ja = `${a[0]}@localhost`;
    const jb = `${b[0]}@localhost`;
    await x.send(xml('presence', { to: jb, type: 'subscribe' }));
    await y.next((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === ja);
    await y.send(xml('presence', { to: ja, type: 'subscribed' }));
    await y.send(xml('presence', { to: ja, type: 'subscribe' }));
    await x.next((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === jb);
    await x.send(xml('presence', { to: jb, type: 'subscribed' }));
    const both = (jid: string) => (s: Element) =>
      s.is('iq') && s.attrs.type === 'set' && s.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === jid &&
      s.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === 'both';
    await x.next(both(jb), 5000, 'subscription both');
    await y.next(both(ja), 5000, 'subscription both');
  } finally {
    await x.stop();
    await y.stop();
  }
}

/** An xmpp.js session that fetched roster and blocklist (so it gets pushes) and is available. */
async function online(port: number, user: string, resource: string): Promise<Xjs> {
  const c = await xmppjs(port, user, `${user}-pw`, resource);
  await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
  await c.iq(xml('iq', { type: 'get' }, xml('blocklist', { xmlns: BLOCKING })));
  await c.send(xml('presence'));
  return c;
}

describe('XEP-0191 Blocking Command and XEP-0012 Last Activity', () => {
  let srv: TestServer;
  let dataDir: string;
  let restarted = false;
  before(async () => {
    requireSlixmpp();
    requireAioxmpp();
    srv = await startTestServer();
    dataDir = srv.dataDir;
    for (const u of ['juliet', 'romeo', 'nurse', 'tybalt']) await srv.createUser(u, `${u}-pw`);
    await befriend(srv.port, ['juliet', 'juliet-pw'], ['romeo', 'romeo-pw']);
  });
  after(async () => {
    await srv.stop();
    if (restarted) rmSync(dataDir, { recursive: true, force: true });
  });

  test('block with slixmpp: pushes, unavailable to the contact, inbound and outbound effects; unblock restores delivery', async () => {
    const jb = await online(srv.port, 'juliet', 'balcony');
    const r = await online(srv.port, 'romeo', 'orchard');
    const js = runSlixmppBlocking(srv.port, 'juliet@localhost/chamber', 'juliet-pw');
    try {
      const ready = await js.waitEvent('ready');
      assert.deepEqual(ready.blocklist, []);
      // §3.1: the server advertises the feature.
      const info = await jb.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: DISCO_INFO })));
      assert.ok(kids(info.getChild('query')!, 'feature').some((f) => f.attrs.var === BLOCKING));
      await r.next(presenceFrom('juliet@localhost/chamber'), 5000, "juliet/chamber's presence");

      // §3.3: slixmpp blocks romeo; the result, then pushes to every resource that got the blocklist.
      await jb.send(command('juliet@localhost/chamber', 'block romeo@localhost'));
      const res = await waitFor(js, (e) => e.event === 'result' && e.cmd === 'block', 'block result');
      assert.equal(res.ok, true, JSON.stringify(res));
      const push = await jb.next(isPush('block', ['romeo@localhost']), 5000, 'block push');
      assert.equal(push.attrs.from, 'juliet@localhost');
      await waitFor(js, (e) => e.event === 'push' && e.kind === 'block' && JSON.stringify(e.items) === '["romeo@localhost"]', 'push on slixmpp');
      // The blocked contact sees both of juliet's resources go unavailable (§3.3).
      await r.next(presenceFrom('juliet@localhost/balcony', 'unavailable'), 5000, 'unavailable from balcony');
      await r.next(presenceFrom('juliet@localhost/chamber', 'unavailable'), 5000, 'unavailable from chamber');
      jb.stanzas.length = 0;
      r.stanzas.length = 0;
      const mark = js.events.length;

      // Inbound from romeo (§3.3): message → service-unavailable, not delivered; iq get/set → service-unavailable; presence dropped.
      await r.send(xml('message', { to: 'juliet@localhost', type: 'chat' }, xml('body', {}, 'Can you hear me?')));
      const bounced = await r.next(errorWith('Can you hear me?'), 5000, 'message error');
      assert.equal(errorCondition(bounced), 'service-unavailable');
      assert.equal(bounced.attrs.from, 'juliet@localhost');
      await r.send(xml('message', { to: 'juliet@localhost/balcony', type: 'chat' }, xml('body', {}, 'To the balcony')));
      assert.equal(errorCondition(await r.next(errorWith('To the balcony'), 5000, 'message error')), 'service-unavailable');
      await assert.rejects(r.iq(xml('iq', { type: 'get', to: 'juliet@localhost/balcony' }, xml('ping', { xmlns: 'urn:xmpp:ping' }))), condition('service-unavailable'));
      await assert.rejects(r.iq(xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('vCard', { xmlns: 'vcard-temp' }))), condition('service-unavailable'));
      await assert.rejects(r.iq(xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('query', { xmlns: LAST }))), condition('service-unavailable'));
      await r.send(xml('presence', {}, xml('status', {}, 'Under the window')));
      await r.send(xml('presence', { to: 'juliet@localhost', type: 'probe' }));
      await pause(300);
      assert.equal(jb.stanzas.filter((s) => s.attrs.from?.startsWith('romeo@')).length, 0, `nothing from romeo: ${jb.stanzas.map(String).join('\n')}`);
      assert.ok(!js.events.slice(mark).some((e) => String(e.frm ?? '').startsWith('romeo@')), `slixmpp got nothing from romeo: ${JSON.stringify(js.events)}`);
      assert.equal(r.stanzas.filter((s) => s.is('presence') && s.attrs.from?.startsWith('juliet@')).length, 0, 'no answer to the probe');

      // Outbound to romeo (§3.3): not-acceptable with <blocked/>, from xmpp.js and from slixmpp.
      await jb.send(xml('message', { to: 'romeo@localhost', type: 'chat' }, xml('body', {}, 'Wherefore?')));
      const refused = await jb.next(errorWith('Wherefore?'), 5000, 'not-acceptable');
      assert.equal(errorCondition(refused), 'not-acceptable');
      assert.ok(refused.getChild('error')!.getChild('blocked', BLOCKING_ERRORS), refused.toString());
      assert.equal(refused.attrs.from, 'romeo@localhost');
      await jb.send(command('juliet@localhost/chamber', 'send romeo@localhost/orchard Parting is such sweet sorrow'));
      const sliErr = await waitFor(js, (e) => e.event === 'message-error', 'message error on slixmpp');
      assert.equal(sliErr.condition, 'not-acceptable');
      assert.equal(sliErr.app, `{${BLOCKING_ERRORS}}blocked`);
      await assert.rejects(jb.iq(xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('vCard', { xmlns: 'vcard-temp' }))), condition('not-acceptable'));
      await pause(200);
      assert.equal(r.stanzas.filter((s) => s.is('message')).length, 0, `romeo got nothing: ${r.stanzas.map(String).join('\n')}`);

      // Errors: an empty <block/> → bad-request; an item that is not a JID → jid-malformed; someone else's list → forbidden.
      await assert.rejects(jb.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: BLOCKING }))), condition('bad-request'));
      await assert.rejects(jb.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: BLOCKING }, xml('item', { jid: '@localhost' })))), condition('jid-malformed'));
      await assert.rejects(jb.iq(xml('iq', { type: 'get', to: 'nurse@localhost' }, xml('blocklist', { xmlns: BLOCKING }))), condition('forbidden'));
      const list = await jb.iq(xml('iq', { type: 'get' }, xml('blocklist', { xmlns: BLOCKING })));
      assert.deepEqual(kids(list.getChild('blocklist', BLOCKING)!, 'item').map((i) => i.attrs.jid), ['romeo@localhost']);

      // §3.4: slixmpp unblocks; pushes; romeo gets juliet's presence again and his messages arrive.
      r.stanzas.length = 0;
      await jb.send(command('juliet@localhost/chamber', 'unblock romeo@localhost'));
      assert.equal((await waitFor(js, (e) => e.event === 'result' && e.cmd === 'unblock', 'unblock result')).ok, true);
      await jb.next(isPush('unblock', ['romeo@localhost']), 5000, 'unblock push');
      await r.next(presenceFrom('juliet@localhost/balcony'), 5000, 'presence from balcony');
      await r.next(presenceFrom('juliet@localhost/chamber'), 5000, 'presence from chamber');
      await r.send(xml('message', { to: 'juliet@localhost/balcony', type: 'chat' }, xml('body', {}, 'Again')));
      assert.equal((await jb.next(messageWith('Again'), 5000, 'delivered message')).attrs.from, 'romeo@localhost/orchard');
      await jb.send(xml('message', { to: 'romeo@localhost', type: 'chat' }, xml('body', {}, 'Welcome back')));
      await r.next(messageWith('Welcome back'), 5000, 'message to romeo');
    } finally {
      js.kill();
      await jb.stop();
      await r.stop();
    }
  });

  test('full-JID and domain items (§6), own resources never blocked; the blocklist survives a restart; unblock all with aioxmpp', async () => {
    const jb = await online(srv.port, 'juliet', 'balcony');
    const r1 = await online(srv.port, 'romeo', 'orchard');
    const r2 = await online(srv.port, 'romeo', 'garden');
    const n = await online(srv.port, 'nurse', 'kitchen');
    const js = runSlixmppBlocking(srv.port, 'juliet@localhost/chamber', 'juliet-pw');
    try {
      await js.waitEvent('ready');
      // One resource of romeo: only that one is blocked.
      await jb.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: BLOCKING }, xml('item', { jid: 'romeo@localhost/orchard' }))));
      await jb.next(isPush('block', ['romeo@localhost/orchard']));
      await r1.next(presenceFrom('juliet@localhost/balcony', 'unavailable'), 5000, 'unavailable to the blocked resource');
      await r1.send(xml('message', { to: 'juliet@localhost/balcony', type: 'chat' }, xml('body', {}, 'from the orchard')));
      assert.equal(errorCondition(await r1.next(errorWith('from the orchard'))), 'service-unavailable');
      await r2.send(xml('message', { to: 'juliet@localhost/balcony', type: 'chat' }, xml('body', {}, 'from the garden')));
      await jb.next(messageWith('from the garden'), 5000, 'message from the other resource');
      // The whole domain: the nurse too; juliet's own resources still talk to each other (§5 note).
      await jb.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: BLOCKING }, xml('item', { jid: 'localhost' }))));
      await jb.next(isPush('block', ['localhost']));
      await n.send(xml('message', { to: 'juliet@localhost', type: 'chat' }, xml('body', {}, 'Madam!')));
      assert.equal(errorCondition(await n.next(errorWith('Madam!'))), 'service-unavailable');
      await jb.send(command('juliet@localhost/chamber', 'blocklist'));
      const seen = await waitFor(js, (e) => e.event === 'blocklist', 'blocklist from slixmpp');
      assert.deepEqual(seen.items, ['localhost', 'romeo@localhost/orchard']);
    } finally {
      js.kill();
      for (const c of [jb, r1, r2, n]) await c.stop();
    }

    // Restart the server on the same data: the blocklist is kept (§3.3 "applies across sessions").
    await srv.stop(false);
    restarted = true;
    srv = await startTestServer({}, dataDir);
    const watcher = await online(srv.port, 'juliet', 'balcony');
    try {
      const aio = runAioxmppBlocking(srv.port, 'juliet@localhost/aio', 'juliet-pw', 'list', 'unblockall', 'wait', 'list');
      const end = await aio.done;
      const ev = (name: string) => end.events.filter((e) => e.event === name);
      assert.equal(end.code, 0, `aioxmpp: ${JSON.stringify(end.events)} ${end.stderr.slice(-2000)}`);
      assert.deepEqual(ev('initial')[0]?.items, ['localhost', 'romeo@localhost/orchard'], JSON.stringify(end.events));
      assert.equal(ev('unblockall')[0]?.ok, true);
      assert.deepEqual(ev('pushed')[0], { event: 'pushed', kind: 'unblock', items: ['localhost', 'romeo@localhost/orchard'] });
      assert.deepEqual(ev('list')[1]?.items, []);
      // The other resource got the "unblock all" push (§3.5): an empty <unblock/>.
      await watcher.next(isPush('unblock', []), 5000, 'unblock-all push');
      const list = await watcher.iq(xml('iq', { type: 'get' }, xml('blocklist', { xmlns: BLOCKING })));
      assert.equal(kids(list.getChild('blocklist', BLOCKING)!, 'item').length, 0);
      const n = await online(srv.port, 'nurse', 'kitchen');
      await n.send(xml('message', { to: 'juliet@localhost', type: 'chat' }, xml('body', {}, 'Madam, again')));
      await watcher.next(messageWith('Madam, again'), 5000, 'delivered after unblock all');
      await n.stop();
    } finally {
      await watcher.stop();
    }
  });

  test('XEP-0012: server uptime, last logout of a contact with its status, forbidden without a subscription', async () => {
    const startedAt = Date.now();
    const j = await online(srv.port, 'juliet', 'balcony');
    const r = await online(srv.port, 'romeo', 'orchard');
    const n = await online(srv.port, 'nurse', 'kitchen');
    const rs = runSlixmppBlocking(srv.port, 'romeo@localhost/sli', 'romeo-pw');
    try {
      await rs.waitEvent('ready');
      const info = await r.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: DISCO_INFO })));
      assert.ok(kids(info.getChild('query')!, 'feature').some((f) => f.attrs.var === LAST), 'jabber:iq:last in disco#info (§6)');
      // §3: an account with a connected resource → 0, empty query.
      const live = await r.iq(xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('query', { xmlns: LAST })));
      assert.equal(live.getChild('query', LAST)!.attrs.seconds, '0');
      assert.equal(live.getChild('query', LAST)!.children.length, 0);
      // §3/§4: without a subscription → forbidden, at the bare JID and at a full JID (not delivered).
      await assert.rejects(n.iq(xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('query', { xmlns: LAST }))), condition('forbidden'));
      await assert.rejects(n.iq(xml('iq', { type: 'get', to: 'juliet@localhost/balcony' }, xml('query', { xmlns: LAST }))), condition('forbidden'));
      await pause(100);
      assert.ok(!j.stanzas.some((s) => s.is('iq') && s.getChild('query', LAST)), 'the forbidden request was not delivered');
      // §4: from a contact, a full-JID request reaches the client (xmpp.js answers service-unavailable itself).
      await assert.rejects(r.iq(xml('iq', { type: 'get', to: 'juliet@localhost/balcony' }, xml('query', { xmlns: LAST }))), condition('service-unavailable'));

      // Juliet logs out with a status; romeo (slixmpp) asks.
      await j.send(xml('presence', { type: 'unavailable' }, xml('status', {}, 'Heading Home')));
      await r.next(presenceFrom('juliet@localhost/balcony', 'unavailable'), 5000, 'unavailable');
      await j.stop();
      await pause(1100);
      await r.send(command('romeo@localhost/sli', 'last juliet@localhost'));
      const last = await waitFor(rs, (e) => e.event === 'last' && e.jid === 'juliet@localhost', 'last activity');
      assert.equal(last.condition, undefined, JSON.stringify(last));
      assert.ok(typeof last.seconds === 'number' && last.seconds >= 1 && last.seconds < 60, JSON.stringify(last));
      assert.equal(last.status, 'Heading Home');
      // The nurse still may not know.
      await assert.rejects(n.iq(xml('iq', { type: 'get', to: 'juliet@localhost' }, xml('query', { xmlns: LAST }))), condition('forbidden'));
      // No such account → service-unavailable (RFC 6121 §8.5.1).
      await assert.rejects(r.iq(xml('iq', { type: 'get', to: 'nobody@localhost' }, xml('query', { xmlns: LAST }))), condition('service-unavailable'));
      // §5: the server's uptime (the server restarted in the previous test; wait until a second has passed).
      if (Date.now() - startedAt < 1000) await pause(1000);
      await r.send(command('romeo@localhost/sli', 'last localhost'));
      const up = await waitFor(rs, (e) => e.event === 'last' && e.jid === 'localhost', 'server uptime');
      assert.ok(typeof up.seconds === 'number' && up.seconds > 0, JSON.stringify(up));
      assert.ok(!up.status, 'no text in the server\'s answer (§5)');
    } finally {
      rs.kill();
      for (const c of [r, n]) await c.stop();
    }
  });
});
