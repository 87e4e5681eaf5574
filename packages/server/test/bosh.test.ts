// XMPP over BOSH (XEP-0124, XEP-0206): an independent client (StanzaJS) and raw HTTP edge cases.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, type Agent } from 'stanza';
import { JID, NS, buildPlain, parseXml, type XmlElement } from '@parley/xmpp';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { xmppjs, xml } from './helpers/xmppjs.ts';

const BODY = NS.HTTPBIND;
const XBOSH = NS.XBOSH;

/** One HTTP answer: status, Content-Type, text and the parsed `<body/>`. */
interface Reply {
  status: number;
  headers: Headers;
  type: string | null;
  text: string;
  body: XmlElement;
}

async function post(url: string, text: string | Uint8Array, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(url, { method: 'POST', body: text, headers });
  const t = await res.text();
  let body: XmlElement;
  try {
    body = parseXml(t);
  } catch {
    body = parseXml(`<nobody/>`);
  }
  return { status: res.status, headers: res.headers, type: res.headers.get('content-type'), text: t, body };
}

/** Builds a request `<body/>`: attributes (values escaped by the caller) and payload. */
function body(attrs: Record<string, string | number>, payload = ''): string {
  const a = Object.entries(attrs)
    .map(([k, v]) => ` ${k}='${v}'`)
    .join('');
  return `<body${a} xmlns='${BODY}' xmlns:xmpp='${XBOSH}'${payload ? `>${payload}</body>` : '/>'}`;
}

/** A hand-driven BOSH session: exact rids, exact bodies. */
class RawBosh {
  readonly url: string;
  rid: number;
  sid = '';
  creation!: Reply;

  constructor(url: string) {
    this.url = url;
    this.rid = 1_000_000 + Math.floor(Math.random() * 1_000_000_000);
  }

  /** Session creation request (XEP-0124 §7.1, XEP-0206 §3). */
  async create(attrs: Record<string, string | number> = {}): Promise<Reply> {
    const r = await post(
      this.url,
      body({ rid: this.rid, to: 'localhost', wait: 10, hold: 1, ver: '1.6', 'xml:lang': 'en', 'xmpp:version': '1.0', ...attrs }),
      { 'content-type': 'text/xml; charset=utf-8' },
    );
    this.creation = r;
    this.sid = r.body.attrs.sid ?? '';
    return r;
  }

  /** The next request (rid + 1) with these payloads. */
  next(payload = '', attrs: Record<string, string | number> = {}): Promise<Reply> {
    this.rid++;
    return this.send(this.rid, payload, attrs);
  }

  /** A request with an explicit rid (does not move this.rid). */
  send(rid: number, payload = '', attrs: Record<string, string | number> = {}): Promise<Reply> {
    return post(this.url, body({ rid, sid: this.sid, ...attrs }, payload), { 'content-type': 'text/xml; charset=utf-8' });
  }

  /** SASL PLAIN, restart, bind (XEP-0206 §5); returns the bound full JID. */
  async login(user: string, password: string, resource: string): Promise<string> {
    const sasl = await this.next(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${buildPlain(user, password).toString('base64')}</auth>`);
    assert.ok(sasl.body.getChild('success', NS.SASL), `SASL success expected: ${sasl.text}`);
    const restart = await this.next('', { to: 'localhost', 'xml:lang': 'en', 'xmpp:restart': 'true' });
    const features = restart.body.getChild('features', NS.STREAM);
    assert.ok(features?.getChild('bind', NS.BIND), `bind feature expected after restart: ${restart.text}`);
    assert.ok(declares(restart, 'stream', NS.STREAM), restart.text);
    const bound = await this.next(
      `<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='${NS.BIND}'><resource>${resource}</resource></bind></iq>`,
    );
    const jid = bound.body.getChild('iq')?.getChild('bind', NS.BIND)?.getChildText('jid');
    assert.ok(jid, `bind result expected: ${bound.text}`);
    return jid;
  }
}

const isTerminate = (r: Reply, condition?: string) =>
  r.status === 200 && r.body.name === 'body' && r.body.attrs.type === 'terminate' && r.body.attrs.condition === condition;

/** `true` when the response's `<body>` start tag declares `prefix` (the parser drops declarations). */
const declares = (r: Reply, prefix: string, ns: string) => r.text.slice(0, r.text.indexOf('>')).includes(` xmlns:${prefix}='${ns}'`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves to 'pending' if `p` has not settled within `ms`. */
async function settledWithin<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, sleep(ms).then(() => 'pending' as const)]);
}

describe('XEP-0206 with an independent client (StanzaJS over BOSH)', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer();
    await ts.createUser('alice', 'alice-pw');
    await ts.createUser('bob', 'bob-pw');
  });
  after(() => ts.stop());

  test('StanzaJS logs in over BOSH, gets its roster and chats both ways with a TCP client', async () => {
    const url = `http://127.0.0.1:${ts.httpPort}/http-bind`;
    const client: Agent = createClient({
      jid: 'alice@localhost',
      password: 'alice-pw',
      resource: 'bosh',
      transports: { websocket: false, bosh: url },
    });
    const received: Array<{ from: string; body: string }> = [];
    const waiters: Array<() => void> = [];
    client.on('message', (m) => {
      if (m.body) received.push({ from: m.from, body: m.body });
      for (const w of waiters.splice(0)) w();
    });
    const started = new Promise<void>((resolve, reject) => {
      client.once('session:started', () => resolve());
      client.once('disconnected', () => reject(new Error('StanzaJS disconnected before the session started')));
      setTimeout(() => reject(new Error('StanzaJS: no session within 10 s')), 10_000).unref();
    });
    client.connect();
    await started;
    const bob = await xmppjs(ts.port, 'bob', 'bob-pw', 'tcp');
    try {
      assert.equal(client.jid, 'alice@localhost/bosh');
      const roster = await client.getRoster();
      assert.ok(Array.isArray(roster.items));
      client.sendPresence();
      // BOSH → TCP
      client.sendMessage({ to: 'bob@localhost/tcp', type: 'chat', body: 'hello over BOSH' });
      const m = await bob.next((s) => s.is('message') && s.getChildText('body') === 'hello over BOSH');
      assert.equal(m.attrs.from, 'alice@localhost/bosh');
      // TCP → BOSH, two in a row (they may share one response)
      await bob.send(xml('message', { to: 'alice@localhost/bosh', type: 'chat' }, xml('body', {}, 'hi from TCP 1')));
      await bob.send(xml('message', { to: 'alice@localhost/bosh', type: 'chat' }, xml('body', {}, 'hi from TCP 2')));
      const deadline = Date.now() + 5000;
      while (received.length < 2 && Date.now() < deadline) await new Promise<void>((r) => waiters.push(r) && setTimeout(r, 200));
      assert.deepEqual(
        received.map((r) => r.body),
        ['hi from TCP 1', 'hi from TCP 2'],
      );
      assert.equal(received[0]!.from, 'bob@localhost/tcp');
      assert.ok(ts.server.sessions.get(JID.parse('alice@localhost/bosh')), 'the BOSH session is bound');
      // A clean logout: the client's terminate request ends the session.
      const ended = new Promise<void>((r) => client.once('--transport-disconnected', () => r()));
      client.disconnect();
      await ended;
      for (let i = 0; i < 50 && ts.server.sessions.get(JID.parse('alice@localhost/bosh')); i++) await sleep(20);
      assert.equal(ts.server.sessions.get(JID.parse('alice@localhost/bosh')), undefined);
    } finally {
      await bob.stop();
      client.disconnect();
    }
  });
});

describe('XEP-0124 over raw HTTP', () => {
  let ts: TestServer;
  let url: string;
  before(async () => {
    ts = await startTestServer({
      http: { allowed_origins: ['https://allowed.example'], bosh: { max_wait: '20s', max_hold: 1 } },
      limits: { max_stanza_size: 10_000 },
    });
    url = `http://127.0.0.1:${ts.httpPort}/http-bind`;
    for (const u of ['carol', 'dave', 'erin', 'frank']) await ts.createUser(u, `${u}-pw`);
  });
  after(() => ts.stop());

  test('session creation response: attributes capped to the configuration, features inside', async () => {
    const b = new RawBosh(url);
    const r = await b.create({ wait: 3600, hold: 5, ver: '1.99', ack: 1 });
    assert.equal(r.status, 200);
    assert.equal(r.type, 'text/xml; charset=utf-8');
    const a = r.body.attrs;
    assert.equal(r.body.ns, BODY);
    assert.match(a.sid ?? '', /^[A-Za-z0-9_-]{20,}$/);
    assert.equal(a.wait, '20', "'wait' capped to http.bosh.max_wait");
    assert.equal(a.hold, '1', "'hold' capped to http.bosh.max_hold");
    assert.equal(a.requests, '2', "'requests' = hold + 1");
    assert.equal(a.inactivity, '60');
    assert.equal(a.polling, '2');
    assert.equal(a.maxpause, '120');
    assert.equal(a.ver, '1.11', 'our version when the client offers a higher one');
    assert.equal(a.ack, String(b.rid), "'ack' = the creation rid when the client uses acknowledgements");
    assert.equal(a.from, 'localhost');
    assert.match(a.authid ?? '', /.+/);
    assert.equal(a['xmpp:version'], '1.0');
    assert.equal(a['xmpp:restartlogic'], 'true');
    assert.ok(declares(r, 'xmpp', XBOSH));
    assert.ok(declares(r, 'stream', NS.STREAM));
    const mechs = r.body.getChild('features', NS.STREAM)?.getChild('mechanisms', NS.SASL);
    assert.ok(mechs, `features with SASL mechanisms: ${r.text}`);
    assert.ok(mechs.getChildren('mechanism').some((m) => m.text() === 'PLAIN'), 'PLAIN: loopback counts as secure');

    // A lower client version is echoed; defaults apply without wait/hold.
    const b2 = new RawBosh(url);
    const r2 = await b2.create({ ver: '1.6', wait: 5 });
    assert.equal(r2.body.attrs.ver, '1.6');
    assert.equal(r2.body.attrs.wait, '5');
    assert.equal(r2.body.attrs.ack, undefined);
  });

  test('Content-Type of requests is ignored (text/xml, text/plain, form, none)', async () => {
    const raw = body({ rid: 42, to: 'localhost', ver: '1.6', wait: 5, 'xmpp:version': '1.0' });
    const variants: Array<Record<string, string>> = [
      { 'content-type': 'application/xml' },
      { 'content-type': 'text/plain; charset=utf-8' },
      { 'content-type': 'application/x-www-form-urlencoded' },
      {},
    ];
    for (const headers of variants) {
      const r = await post(url, new TextEncoder().encode(raw), headers);
      assert.equal(r.status, 200, JSON.stringify(headers));
      assert.ok(r.body.attrs.sid, `${JSON.stringify(headers)}: ${r.text}`);
    }
  });

  test('login over raw BOSH; out-of-order rids are processed in order, repeats get the same response', async () => {
    const b = new RawBosh(url);
    await b.create({ wait: 1 });
    assert.equal(await b.login('carol', 'carol-pw', 'raw'), 'carol@localhost/raw');
    const r1 = b.rid + 1;
    const r2 = b.rid + 2;
    b.rid = r2;
    const ping = (id: string) => `<iq type='get' id='${id}' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>`;
    // rid+2 first: kept until rid+1 arrives.
    const second = b.send(r2, ping('second'));
    assert.equal(await settledWithin(second, 400), 'pending', 'a request ahead of its turn is not answered');
    const first = await b.send(r1, ping('first'));
    const secondReply = await second;
    const ids = [...first.body.getChildren('iq'), ...secondReply.body.getChildren('iq')].map((iq) => iq.attrs.id);
    assert.deepEqual(ids, ['first', 'second'], `answered in rid order: ${first.text} / ${secondReply.text}`);
    assert.ok(first.body.getChildren('iq').length > 0, 'rid+1 is answered with the output of rid+1 (more than hold requests held)');

    // §14.3: the same rid again → the same response.
    const again = await b.send(r1, ping('first'));
    assert.equal(again.text, first.text);
    const again2 = await b.send(r2, ping('second'));
    assert.equal(again2.text, secondReply.text);

    // §14.2: a rid beyond the window → item-not-found, and the session is over.
    const beyond = await b.send(b.rid + 3);
    assert.ok(isTerminate(beyond, 'item-not-found'), beyond.text);
    const after = await b.next();
    assert.ok(isTerminate(after, 'item-not-found'), after.text);
    for (let i = 0; i < 50 && ts.server.sessions.get(JID.parse('carol@localhost/raw')); i++) await sleep(20);
    assert.equal(ts.server.sessions.get(JID.parse('carol@localhost/raw')), undefined, 'the XMPP session ended with the BOSH session');
  });

  test('a held request is answered empty after wait; data arriving answers the held request', async () => {
    const b = new RawBosh(url);
    await b.create({ wait: 1 });
    await b.login('dave', 'dave-pw', 'held');
    const t0 = Date.now();
    const empty = await b.next();
    const took = Date.now() - t0;
    assert.equal(empty.text, `<body xmlns='${BODY}'/>`);
    assert.ok(took >= 900 && took < 3000, `answered after about 'wait' (1 s): ${took} ms`);

    // A held request gets a message as soon as it is sent, from another client.
    const held = b.next();
    await sleep(100);
    const other = await xmppjs(ts.port, 'erin', 'erin-pw', 'tcp');
    try {
      await other.send(xml('message', { to: 'dave@localhost/held', type: 'chat' }, xml('body', {}, 'to the held request')));
      const got = await held;
      assert.equal(got.body.getChild('message')?.getChildText('body'), 'to the held request');
      assert.equal(got.body.getChild('message')?.ns, NS.CLIENT, 'stanzas carry jabber:client');
    } finally {
      await other.stop();
    }

    // When a newer request arrives beyond 'hold', the oldest is answered at once.
    const older = b.next();
    await sleep(100);
    const newer = b.next();
    const o = await settledWithin(older, 500);
    assert.notEqual(o, 'pending', 'the older held request is answered when a newer one arrives');
    assert.equal((o as Reply).text, `<body xmlns='${BODY}'/>`);
    await newer;
  });

  test('terminate from the client: payloads forwarded, terminate body, then item-not-found', async () => {
    const b = new RawBosh(url);
    await b.create({ wait: 5 });
    await b.login('frank', 'frank-pw', 'term');
    const watcher = await xmppjs(ts.port, 'frank', 'frank-pw', 'watch');
    try {
      // Another resource of the account, available, sees the BOSH resource's presence (RFC 6121 §4.2.2).
      await watcher.send(xml('presence'));
      // The BOSH resource becomes available, then leaves with its terminate request.
      const avail = await b.next(`<presence xmlns='jabber:client'/>`);
      assert.equal(avail.status, 200);
      await watcher.next((s) => s.is('presence') && s.attrs.from === 'frank@localhost/term' && s.attrs.type === undefined);
      const end = await b.next(`<presence type='unavailable' xmlns='jabber:client'><status>bye</status></presence>`, { type: 'terminate' });
      assert.equal(end.body.attrs.type, 'terminate', end.text);
      assert.equal(end.body.attrs.condition, undefined);
      const gone = await watcher.next((s) => s.is('presence') && s.attrs.from === 'frank@localhost/term' && s.attrs.type === 'unavailable');
      assert.equal(gone.getChildText('status'), 'bye', 'the payload of the terminate request was forwarded');
      const after = await b.next();
      assert.ok(isTerminate(after, 'item-not-found'), after.text);
    } finally {
      await watcher.stop();
    }
  });

  test('a stream error from the server: terminate remote-stream-error with the stream error inside', async () => {
    const b = new RawBosh(url);
    await b.create({ wait: 5 });
    await b.login('carol', 'carol-pw', 'forger');
    const r = await b.next(`<message to='dave@localhost' from='mallory@localhost/x' xmlns='jabber:client'><body>forged</body></message>`);
    assert.ok(isTerminate(r, 'remote-stream-error'), r.text);
    assert.ok(declares(r, 'stream', NS.STREAM));
    const err = r.body.getChild('error', NS.STREAM);
    assert.ok(err?.getChild('invalid-from', NS.STREAMS), r.text);
    assert.ok(isTerminate(await b.next(), 'item-not-found'));
  });

  test('bad requests: unknown sid, malformed XML, not a body, no rid, wrong or missing to', async () => {
    const unknown = await post(url, body({ rid: 7, sid: 'no-such-session' }));
    assert.ok(isTerminate(unknown, 'item-not-found'), unknown.text);
    assert.equal(unknown.type, 'text/xml; charset=utf-8');

    const malformed = await post(url, `<body rid='1' to='localhost' xmlns='${BODY}'><message>`);
    assert.ok(isTerminate(malformed, 'bad-request'), malformed.text);
    const comment = await post(url, `<body rid='1' to='localhost' xmlns='${BODY}'><!-- no --></body>`);
    assert.ok(isTerminate(comment, 'bad-request'), comment.text);
    const notBody = await post(url, `<stream rid='1' to='localhost' xmlns='${BODY}'/>`);
    assert.ok(isTerminate(notBody, 'bad-request'), notBody.text);
    const wrongNs = await post(url, `<body rid='1' to='localhost' ver='1.6' xmlns='jabber:client'/>`);
    assert.ok(isTerminate(wrongNs, 'bad-request'), wrongNs.text);
    const empty = await post(url, '');
    assert.ok(isTerminate(empty, 'bad-request'), empty.text);
    const noRid = await post(url, body({ to: 'localhost', ver: '1.6' }));
    assert.ok(isTerminate(noRid, 'bad-request'), noRid.text);
    const badRid = await post(url, body({ rid: '-5', to: 'localhost', ver: '1.6' }));
    assert.ok(isTerminate(badRid, 'bad-request'), badRid.text);

    const wrongTo = await post(url, body({ rid: 1, to: 'elsewhere.example', ver: '1.6' }));
    assert.ok(isTerminate(wrongTo, 'host-unknown'), wrongTo.text);
    const noTo = await post(url, body({ rid: 1, ver: '1.6' }));
    assert.ok(isTerminate(noTo, 'improper-addressing'), noTo.text);

    // A malformed body for a live session ends it too (the client was told 'terminate').
    const b = new RawBosh(url);
    await b.create();
    const bad = await post(url, `<body rid='${b.rid + 1}' sid='${b.sid}' xmlns='${BODY}'><iq></body>`);
    assert.ok(isTerminate(bad, 'bad-request'), bad.text);
    assert.ok(isTerminate(await b.next(), 'item-not-found'));

    // Legacy clients (no 'ver') get the HTTP codes of XEP-0124 §17.1 for their session's errors.
    const legacy = new RawBosh(url);
    const lr = await post(url, body({ rid: legacy.rid, to: 'localhost', wait: 5, hold: 1, 'xmpp:version': '1.0' }));
    legacy.sid = lr.body.attrs.sid!;
    const l404 = await legacy.send(legacy.rid + 5);
    assert.equal(l404.status, 404);
    const legacyBadTo = await post(url, body({ rid: 1, to: 'elsewhere.example' }));
    assert.ok(isTerminate(legacyBadTo, 'host-unknown'));
  });

  test('too many simultaneous requests → policy-violation; oversized body → policy-violation', async () => {
    const b = new RawBosh(url);
    await b.create({ wait: 5 });
    const r = b.rid;
    const held = b.send(r + 1);
    await sleep(50);
    const early = b.send(r + 3);
    await sleep(50);
    const third = await b.send(r + 2);
    assert.ok(isTerminate(third, 'policy-violation'), third.text);
    assert.ok(isTerminate(await held, 'policy-violation'));
    assert.ok(isTerminate(await early, 'policy-violation'));

    // Over the HTTP body limit (2 × max_stanza_size + 16 KiB).
    const huge = `<message xmlns='jabber:client'><body>${'x'.repeat(40_000)}</body></message>`;
    const big = await post(url, body({ rid: 1, to: 'localhost', ver: '1.6' }, huge));
    assert.ok(isTerminate(big, 'policy-violation'), big.text);
    // A stanza over limits.max_stanza_size inside a body within the HTTP limit.
    const b2 = new RawBosh(url);
    await b2.create({ wait: 5 });
    const bigStanza = await b2.next(`<message xmlns='jabber:client'><body>${'y'.repeat(12_000)}</body></message>`);
    assert.ok(isTerminate(bigStanza, 'policy-violation'), bigStanza.text);
  });

  test('pause: every held request answered at once, empty', async () => {
    const b = new RawBosh(url);
    await b.create({ wait: 10 });
    const held = b.next();
    await sleep(50);
    const t0 = Date.now();
    const pause = await b.next('', { pause: 30 });
    assert.equal(pause.text, `<body xmlns='${BODY}'/>`);
    await held;
    assert.ok(Date.now() - t0 < 1000);
    // The session survives the pause: the next request is held as usual.
    const resumed = await settledWithin(b.next(), 300);
    assert.equal(resumed, 'pending');
  });

  test('CORS: preflight and responses for allowed origins only', async () => {
    const preflight = (origin: string) =>
      fetch(url, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
    for (const origin of ['https://allowed.example', `http://127.0.0.1:${ts.httpPort}`]) {
      const ok = await preflight(origin);
      assert.equal(ok.status, 204, origin);
      assert.equal(ok.headers.get('access-control-allow-origin'), origin);
      assert.match(ok.headers.get('access-control-allow-methods') ?? '', /POST/);
      assert.match(ok.headers.get('access-control-allow-headers') ?? '', /content-type/i);
    }
    const refused = await preflight('https://evil.example');
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
    assert.notEqual(refused.status, 204);

    const creation = body({ rid: 5, to: 'localhost', ver: '1.6', wait: 5 });
    const allowed = await post(url, creation, { origin: 'https://allowed.example' });
    assert.ok(allowed.body.attrs.sid);
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://allowed.example');
    // Like the WebSocket endpoint, a page from a refused origin cannot open a session at all.
    const evil = await post(url, creation, { origin: 'https://evil.example' });
    assert.equal(evil.status, 403);
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
  });
});

describe('XEP-0124 sessions with their own server configuration: inactivity, security, polling, shutdown', () => {
  test('an inactive session expires: the XMPP session ends, its sid is unknown afterwards', async () => {
    const ts = await startTestServer({ http: { bosh: { max_inactivity: '1s' } } });
    try {
      await ts.createUser('gina', 'gina-pw');
      const url = `http://127.0.0.1:${ts.httpPort}/http-bind`;
      const b = new RawBosh(url);
      const c = await b.create({ wait: 1 });
      assert.equal(c.body.attrs.inactivity, '1');
      await b.login('gina', 'gina-pw', 'idle');
      const jid = JID.parse('gina@localhost/idle');
      assert.ok(ts.server.sessions.get(jid));
      // No more requests: gone after 'inactivity' (1 s).
      const t0 = Date.now();
      await sleep(700);
      assert.ok(ts.server.sessions.get(jid), 'still there within the inactivity period');
      while (ts.server.sessions.get(jid) && Date.now() - t0 < 4000) await sleep(50);
      assert.equal(ts.server.sessions.get(jid), undefined, 'the account session ended with the BOSH session');
      assert.ok(Date.now() - t0 >= 900, `ended after about 'inactivity': ${Date.now() - t0} ms`);
      const late = await b.next();
      assert.ok(isTerminate(late, 'item-not-found'), late.text);
    } finally {
      await ts.stop();
    }
  });

  test('XEP-0124 §19.1: a session created over HTTPS refuses plain HTTP; without secure_loopback plain HTTP is not secure', async () => {
    const ts = await startTestServer({ http: { secure_loopback: false } });
    try {
      const https = new RawBosh(`https://127.0.0.1:${ts.httpsPort}/http-bind`);
      const c = await https.create({ wait: 1 });
      assert.ok(c.body.getChild('features', NS.STREAM)?.getChild('mechanisms', NS.SASL), 'HTTPS: SASL offered');
      const plain = new RawBosh(`http://127.0.0.1:${ts.httpPort}/http-bind`);
      plain.sid = https.sid;
      await assert.rejects(plain.send(https.rid + 1), 'the connection is closed without an answer');
      // The session is intact over HTTPS.
      const next = await https.send(https.rid + 1);
      assert.equal(next.status, 200);
      assert.notEqual(next.body.attrs.type, 'terminate', next.text);
      // A new session over plain HTTP is not secure: no SASL mechanisms while encryption is required.
      const p2 = new RawBosh(`http://127.0.0.1:${ts.httpPort}/http-bind`);
      const pc = await p2.create({ wait: 1 });
      assert.equal(pc.body.getChild('features', NS.STREAM)?.getChild('mechanisms', NS.SASL), undefined, pc.text);
    } finally {
      await ts.stop();
    }
  });

  test('polling sessions (hold 0): answered at once; empty polls too close together → policy-violation', async () => {
    const ts = await startTestServer();
    try {
      const b = new RawBosh(`http://127.0.0.1:${ts.httpPort}/http-bind`);
      const c = await b.create({ hold: 0, wait: 10 });
      assert.equal(c.body.attrs.hold, '0');
      assert.equal(c.body.attrs.requests, '1');
      const t0 = Date.now();
      const first = await b.next();
      assert.equal(first.text, `<body xmlns='${BODY}'/>`);
      assert.ok(Date.now() - t0 < 500, 'not held');
      const second = await b.next();
      assert.ok(isTerminate(second, 'policy-violation'), second.text);
    } finally {
      await ts.stop();
    }
  });

  test('stopping the server answers held requests and leaves nothing running', async () => {
    const ts = await startTestServer();
    const url = `http://127.0.0.1:${ts.httpPort}/http-bind`;
    const b = new RawBosh(url);
    await b.create({ wait: 30 });
    const held = b.next();
    await sleep(50);
    const t0 = Date.now();
    await ts.stop();
    const r = await held;
    assert.equal(r.body.attrs.type, 'terminate', r.text);
    assert.ok(Date.now() - t0 < 5000, 'the stop did not wait for the held request');
  });
});
