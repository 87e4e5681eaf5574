// XMPP over WebSocket (RFC 7395) and connection discovery (XEP-0156): independent clients
// (xmpp.js, StanzaJS) as full sessions, and the framing rules on a raw WebSocket.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import * as Stanza from 'stanza';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { xmppjs, xml, type Xjs } from './helpers/xmppjs.ts';

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const ROSTER = 'jabber:iq:roster';

/** A raw WebSocket client that queues every text message it receives. */
class RawWs {
  readonly ws: WebSocket;
  readonly messages: string[] = [];
  closed: { code: number } | null = null;
  private waiters: Array<() => void> = [];
  private handshake: Promise<void>;

  constructor(url: string, opts: { protocols?: string[]; origin?: string; autoPong?: boolean } = {}) {
    this.ws = new WebSocket(url, opts.protocols ?? ['xmpp'], {
      ...(opts.origin ? { origin: opts.origin } : {}),
      autoPong: opts.autoPong ?? true,
      rejectUnauthorized: false,
    });
    this.ws.on('message', (data) => {
      this.messages.push(String(data));
      this.wake();
    });
    this.ws.on('close', (code) => {
      this.closed = { code };
      this.wake();
    });
    this.ws.on('error', () => {});
    this.handshake = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      this.ws.once('error', reject);
    });
    this.handshake.catch(() => {});
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when the handshake succeeds; rejects with the HTTP status when it is refused. */
  opened(): Promise<void> {
    return this.handshake;
  }

  send(s: string): void {
    this.ws.send(s);
  }

  /** The next message matching `pattern` (earlier ones are dropped). */
  async next(pattern: RegExp, ms = 5000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.messages.findIndex((m) => pattern.test(m));
      if (i >= 0) return this.messages.splice(0, i + 1).pop()!;
      if (Date.now() > deadline) throw new Error(`no message matching ${pattern}; got ${this.messages.join('\n')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async waitClosed(ms = 5000): Promise<{ code: number }> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('the WebSocket was not closed');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.closed;
  }

  /** Opens the stream and waits for the server's `<open/>` and features. */
  async open(to = 'localhost'): Promise<string> {
    await this.opened();
    this.send(`<open xmlns='${FRAMING}' to='${to}' version='1.0'/>`);
    await this.next(/^<open /);
    return this.next(/^<stream:features/);
  }

  /** SASL PLAIN, restart, bind: a bound session. */
  async login(user: string, password: string, resource: string): Promise<void> {
    const features = await this.open();
    assert.match(features, /<mechanism>PLAIN<\/mechanism>/);
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
    await this.next(/^<success/);
    // RFC 7395 §3.7: the restart is a new <open/>.
    this.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
    await this.next(/^<open /);
    await this.next(/^<stream:features/);
    this.send(`<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    await this.next(/id='b1'/);
  }

  close(): void {
    this.ws.terminate();
  }
}

describe('XMPP over WebSocket (RFC 7395)', () => {
  let srv: TestServer;
  let wsUrl: string;
  before(async () => {
    srv = await startTestServer({ http: { websocket: { keepalive: '1s' } }, limits: { max_stanza_size: 10_000 } });
    wsUrl = `ws://127.0.0.1:${srv.httpPort}/xmpp-websocket`;
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) await srv.createUser(u, `${u}-pw`);
  });
  after(() => srv.stop());

  test('xmpp.js over WebSocket is a full session: roster, subscription, presence, chat with a TCP client both ways, offline delivery', async () => {
    const a = await xmppjs(wsUrl, 'alice', 'alice-pw', 'web');
    const b = await xmppjs(srv.port, 'bob', 'bob-pw', 'tcp');
    try {
      // Subscription both ways, initiated from the WebSocket session.
      await a.send(xml('presence'));
      await b.send(xml('presence'));
      await a.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
      await b.next((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'alice@localhost');
      await b.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
      await b.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
      await a.next((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'bob@localhost');
      await a.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
      // Presence flows over the WebSocket both ways.
      await a.next((s) => s.is('presence') && s.attrs.from === 'bob@localhost/tcp' && s.attrs.type === undefined);
      await b.next((s) => s.is('presence') && s.attrs.from === 'alice@localhost/web' && s.attrs.type === undefined);
      const roster = await a.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: ROSTER })));
      assert.equal(roster.getChild('query', ROSTER)!.getChild('item')!.attrs.subscription, 'both');

      await a.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'from the browser side')));
      const m1 = await b.next((s) => s.is('message'));
      assert.equal(m1.attrs.from, 'alice@localhost/web');
      assert.equal(m1.getChildText('body'), 'from the browser side');
      await b.send(xml('message', { to: 'alice@localhost/web', type: 'chat' }, xml('body', {}, 'from TCP')));
      const m2 = await a.next((s) => s.is('message'));
      assert.equal(m2.getChildText('body'), 'from TCP');

      // Unavailable reaches the contact when the WebSocket goes away.
      await a.stop();
      await b.next((s) => s.is('presence') && s.attrs.from === 'alice@localhost/web' && s.attrs.type === 'unavailable');
      // Offline message to alice, delivered when she comes back over WebSocket.
      await b.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'while you were away')));
      await new Promise((r) => setTimeout(r, 200));
      const a2 = await xmppjs(wsUrl, 'alice', 'alice-pw', 'web2');
      try {
        await a2.send(xml('presence'));
        const off = await a2.next((s) => s.is('message') && s.getChildText('body') === 'while you were away');
        assert.ok(off.getChild('delay', 'urn:xmpp:delay'), 'offline delivery carries a delay stamp');
      } finally {
        await a2.stop();
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('StanzaJS over WebSocket logs in and chats with a TCP client both ways', async () => {
    const b = await xmppjs(srv.port, 'dave', 'dave-pw', 'tcp');
    const s = Stanza.createClient({
      jid: 'carol@localhost',
      password: 'carol-pw',
      resource: 'stanza',
      transports: { websocket: wsUrl, bosh: false },
    });
    try {
      const online = new Promise<void>((resolve, reject) => {
        s.once('session:started', () => resolve());
        s.once('auth:failed', () => reject(new Error('StanzaJS: auth failed')));
      });
      const incoming = new Promise<Stanza.Stanzas.Message>((resolve) => s.on('chat', (m) => resolve(m)));
      s.connect();
      await online;
      assert.equal(s.jid, 'carol@localhost/stanza');
      const roster = await s.getRoster();
      assert.deepEqual(roster.items, []);
      s.sendMessage({ to: 'dave@localhost/tcp', type: 'chat', body: 'hello from StanzaJS' });
      const m = await b.next((x) => x.is('message'));
      assert.equal(m.attrs.from, 'carol@localhost/stanza');
      assert.equal(m.getChildText('body'), 'hello from StanzaJS');
      await b.send(xml('message', { to: 'carol@localhost/stanza', type: 'chat' }, xml('body', {}, 'hello StanzaJS')));
      const back = await incoming;
      assert.equal(back.body, 'hello StanzaJS');
      assert.equal(back.from, 'dave@localhost/tcp');
    } finally {
      s.disconnect();
      await b.stop();
    }
  });

  test('wss on the HTTPS port (xmpp.js)', async () => {
    const c = await xmppjs(`wss://127.0.0.1:${srv.httpsPort}/xmpp-websocket`, 'erin', 'erin-pw', 'secure');
    try {
      const r = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(r.attrs.type, 'result');
    } finally {
      await c.stop();
    }
  });

  test('framing: <open/> and features declare their namespaces; stanzas carry xmlns=jabber:client; <close/> is answered', async () => {
    const c = new RawWs(wsUrl);
    await c.opened();
    c.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
    const open = await c.next(/^<open /);
    assert.match(open, new RegExp(`^<open xmlns='${FRAMING}' from='localhost' id='[^']+' version='1.0' xml:lang='en'/>$`));
    const features = await c.next(/^<stream:features/);
    assert.match(features, /^<stream:features xmlns:stream='http:\/\/etherx.jabber.org\/streams'>/);
    assert.match(features, /SCRAM-SHA-256/, 'a plain connection from loopback counts as encrypted (http.secure_loopback)');
    assert.doesNotMatch(features, /starttls/, 'no STARTTLS over WebSocket (RFC 7395 §3.9)');
    c.close();

    const d = new RawWs(wsUrl);
    await d.login('bob', 'bob-pw', 'raw');
    d.send(`<iq type='get' id='p1' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.match(await d.next(/id='p1'/), /^<iq xmlns='jabber:client' type='result' id='p1'/);
    // A stanza without xmlns is taken as jabber:client.
    d.send(`<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.match(await d.next(/id='p2'/), /type='result'/);
    d.send(`<close xmlns='${FRAMING}'/>`);
    assert.match(await d.next(/^<close/), new RegExp(`^<close xmlns='${FRAMING}'/>$`));
    assert.equal((await d.waitClosed()).code, 1000);
  });

  test('stream errors: <open/>, <stream:error> with its prefix declared, then <close/>', async () => {
    const c = new RawWs(wsUrl);
    await c.opened();
    c.send(`<open xmlns='${FRAMING}' to='elsewhere.example' version='1.0'/>`);
    await c.next(/^<open /);
    const err = await c.next(/^<stream:error/);
    assert.match(err, /^<stream:error xmlns:stream='http:\/\/etherx.jabber.org\/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    await c.next(/^<close /);
    await c.waitClosed();

    // A TCP stream header over WebSocket is the wrong framing.
    const d = new RawWs(wsUrl);
    await d.opened();
    d.send(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`);
    assert.match(await d.next(/^<stream:error/), /not-well-formed/);
    await d.waitClosed();

    // One message = one complete element (§3.3.3).
    const e = new RawWs(wsUrl);
    await e.open();
    e.send(`<iq type='get' id='x'>`);
    assert.match(await e.next(/^<stream:error/), /not-well-formed/);
    await e.waitClosed();

    // Binary messages are not XMPP (§3.2).
    const f = new RawWs(wsUrl);
    await f.open();
    f.ws.send(Buffer.from('<presence/>'), { binary: true });
    assert.match(await f.next(/^<stream:error/), /bad-format/);
    await f.waitClosed();

    // Invalid UTF-8 in a text message (RFC 6120 §11.6; the stream parser checks it, not the WebSocket layer).
    const u = new RawWs(wsUrl);
    await u.open();
    u.ws.send(Buffer.from([0x3c, 0x70, 0x72, 0x65, 0x73, 0x65, 0x6e, 0x63, 0x65, 0xff, 0xfe, 0x2f, 0x3e]), { binary: false });
    assert.match(await u.next(/^<stream:error/), /not-well-formed/);
    await u.waitClosed();

    // Data before authentication other than SASL.
    const g = new RawWs(wsUrl);
    await g.open();
    g.send(`<message to='bob@localhost' xmlns='jabber:client'><body>x</body></message>`);
    assert.match(await g.next(/^<stream:error/), /not-authorized/);
    await g.waitClosed();
  });

  test('frame size: an oversized stanza gets policy-violation; a frame beyond the WebSocket limit is refused (1009)', async () => {
    const c = new RawWs(wsUrl);
    await c.login('bob', 'bob-pw', 'big1');
    c.send(`<message to='alice@localhost' xmlns='jabber:client'><body>${'a'.repeat(12_000)}</body></message>`);
    assert.match(await c.next(/^<stream:error/), /policy-violation/);
    await c.waitClosed();

    const d = new RawWs(wsUrl);
    await d.login('bob', 'bob-pw', 'big2');
    d.send(`<message to='alice@localhost' xmlns='jabber:client'><body>${'a'.repeat(40_000)}</body></message>`);
    assert.equal((await d.waitClosed()).code, 1009);
    // The server and other sessions are unaffected.
    const e = new RawWs(wsUrl);
    await e.login('bob', 'bob-pw', 'after');
    e.close();
  });

  test('opening handshake: the xmpp subprotocol is required; foreign origins are refused unless allowed', async () => {
    await assert.rejects(new RawWs(wsUrl, { protocols: [] }).opened(), /HTTP 400/);
    await assert.rejects(new RawWs(wsUrl, { protocols: ['chat'] }).opened(), /HTTP 400/);
    await assert.rejects(new RawWs(wsUrl, { origin: 'https://evil.example' }).opened(), /HTTP 403/);
    // The server's own origin (a page it served) is allowed.
    const same = new RawWs(wsUrl, { origin: `http://127.0.0.1:${srv.httpPort}` });
    await same.open();
    assert.equal(same.ws.protocol, 'xmpp');
    same.close();

    const other = await startTestServer({ http: { allowed_origins: ['https://app.example'] } });
    try {
      const url = `ws://127.0.0.1:${other.httpPort}/xmpp-websocket`;
      const ok = new RawWs(url, { origin: 'https://app.example' });
      await ok.open();
      ok.close();
      await assert.rejects(new RawWs(url, { origin: 'https://evil.example' }).opened(), /HTTP 403/);
    } finally {
      await other.stop();
    }
  });

  test('keepalive: a client that stops answering WebSocket pings is disconnected and its session ends; a live one stays', async () => {
    // alice and bob are subscribed both ways (first test); alice's available resource sees bob's presence.
    const watcher: Xjs = await xmppjs(srv.port, 'alice', 'alice-pw', 'watch');
    await watcher.send(xml('presence'));
    const dead = new RawWs(wsUrl, { autoPong: false });
    const live = new RawWs(wsUrl);
    try {
      await dead.login('bob', 'bob-pw', 'dead');
      await live.login('bob', 'bob-pw', 'live');
      dead.send(`<presence xmlns='jabber:client'/>`);
      await watcher.next((s) => s.is('presence') && s.attrs.from === 'bob@localhost/dead' && s.attrs.type === undefined);
      // keepalive is 1 s: the silent client is gone after at most two rounds.
      await dead.waitClosed(4000);
      await watcher.next((s) => s.is('presence') && s.attrs.from === 'bob@localhost/dead' && s.attrs.type === 'unavailable', 2000);
      assert.equal(live.closed, null);
      live.send(`<iq type='get' id='alive' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>`);
      assert.match(await live.next(/id='alive'/), /type='result'/);
    } finally {
      dead.close();
      live.close();
      await watcher.stop();
    }
  });

  test('without secure_loopback a plain WebSocket offers no SASL (RFC 6120 §5.3.1 policy) and refuses auth', async () => {
    const other = await startTestServer({ http: { secure_loopback: false } });
    try {
      const c = new RawWs(`ws://127.0.0.1:${other.httpPort}/xmpp-websocket`);
      const features = await c.open();
      assert.doesNotMatch(features, /mechanism/);
      c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>`);
      assert.match(await c.next(/^<failure/), /encryption-required/);
      c.close();
      // Over wss it works.
      const d = new RawWs(`wss://127.0.0.1:${other.httpsPort}/xmpp-websocket`);
      assert.match(await d.open(), /SCRAM-SHA-256-PLUS/, 'channel binding (tls-exporter) is offered over wss');
      d.close();
    } finally {
      await other.stop();
    }
  });
});

describe('connection method discovery (XEP-0156)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(() => srv.stop());

  test('host-meta (XRD) and host-meta.json (JRD) list the WebSocket and BOSH endpoints, readable from any origin', async () => {
    const base = `http://127.0.0.1:${srv.httpPort}`;
    const xrd = await fetch(`${base}/.well-known/host-meta`);
    assert.equal(xrd.status, 200);
    assert.match(xrd.headers.get('content-type') ?? '', /^application\/xrd\+xml/);
    assert.equal(xrd.headers.get('access-control-allow-origin'), '*');
    const body = await xrd.text();
    assert.match(body, /<XRD xmlns='http:\/\/docs.oasis-open.org\/ns\/xri\/xrd-1.0'>/);
    assert.match(body, new RegExp(`<Link rel='urn:xmpp:alt-connections:websocket' href='ws://127.0.0.1:${srv.httpPort}/xmpp-websocket'/>`));
    assert.match(body, new RegExp(`<Link rel='urn:xmpp:alt-connections:xbosh' href='http://127.0.0.1:${srv.httpPort}/http-bind'/>`));

    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    const jrd = await fetch(`https://localhost:${srv.httpsPort}/.well-known/host-meta.json`);
    assert.equal(jrd.headers.get('access-control-allow-origin'), '*');
    assert.deepEqual(await jrd.json(), {
      links: [
        { rel: 'urn:xmpp:alt-connections:websocket', href: `wss://localhost:${srv.httpsPort}/xmpp-websocket` },
        { rel: 'urn:xmpp:alt-connections:xbosh', href: `https://localhost:${srv.httpsPort}/http-bind` },
      ],
    });
  });

  test('the chat page is served, and can be turned off', async () => {
    const page = await fetch(`http://127.0.0.1:${srv.httpPort}/chat`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /converse/i);
    const other = await startTestServer({ http: { chat: { enabled: false } } });
    try {
      assert.equal((await fetch(`http://127.0.0.1:${other.httpPort}/chat`)).status, 404);
    } finally {
      await other.stop();
    }
  });

  test('disabled endpoints are not listed', async () => {
    const other = await startTestServer({ http: { bosh: { enabled: false } } });
    try {
      const jrd = (await (await fetch(`http://127.0.0.1:${other.httpPort}/.well-known/host-meta.json`)).json()) as { links: { rel: string }[] };
      assert.deepEqual(jrd.links.map((l) => l.rel), ['urn:xmpp:alt-connections:websocket']);
    } finally {
      await other.stop();
    }
  });
});
