// Client-to-server streams over real sockets (RFC 6120): stream headers, restricted XML,
// limits, STARTTLS, SASL, resource binding, routing, shutdown and server pings.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type tls from 'node:tls';
import { NS, ScramClient, buildPlain, xml, type XmlElement } from '@parley/xmpp';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { RawClient } from './helpers/raw-client.ts';

const DOMAIN = 'localhost';
const MAX_STANZA = 20000;
const MAX_DEPTH = 16;
const MAX_ATTRS = 20;

/** A stream header; each attribute can be overridden or removed (`null`). */
function header(over: Record<string, string | null> = {}, prefix = 'stream'): string {
  const attrs: Record<string, string | null> = {
    to: DOMAIN,
    version: '1.0',
    xmlns: NS.CLIENT,
    [`xmlns:${prefix}`]: NS.STREAM,
    ...over,
  };
  const list = Object.entries(attrs)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => ` ${k}='${v}'`)
    .join('');
  return `<?xml version='1.0'?><${prefix}:stream${list}>`;
}

/** The defined condition of a stanza error (RFC 6120 §8.3.3). */
function stanzaCondition(el: XmlElement): string | undefined {
  return el.getChild('error')?.getChildren().find((c) => c.ns === NS.STANZAS && c.name !== 'text')?.name;
}

/** The first condition child of a SASL <failure/> (RFC 6120 §6.5). */
function saslCondition(el: XmlElement): string | undefined {
  return el.getChildren().find((c) => c.ns === NS.SASL && c.name !== 'text')?.name;
}

const ping = (id: string, to: string | undefined = DOMAIN) =>
  xml('iq', { type: 'get', id, to }, xml('ping', { xmlns: NS.PING })).toString();

/**
 * Asserts the server ended the stream the RFC 6120 §4.9 way: its own header first, then
 * <stream:error> with `condition`, then </stream:stream>, then the TCP connection closes.
 */
async function expectStreamError(c: RawClient, condition: string): Promise<void> {
  assert.equal(await c.streamError(), condition);
  await c.waitFor(() => c.ended, 5000, '</stream:stream>');
  await c.waitClosed();
  assert.ok(c.headers >= 1, 'the server sent its stream header');
  const err = c.raw.lastIndexOf('<stream:error>');
  const hdr = c.raw.lastIndexOf('<stream:stream ', err);
  const end = c.raw.lastIndexOf('</stream:stream>');
  assert.ok(hdr >= 0 && hdr < err && err < end, `header, error, close in that order: ${c.raw}`);
  assert.equal(c.raw.slice(end), '</stream:stream>', 'nothing after the closing tag');
  assert.equal(c.raw.match(/<stream:error>/g)?.length, 1, 'exactly one stream error');
}

/** Connects, sends a valid header and waits for the first features. */
async function opened(port: number, clients: RawClient[]): Promise<RawClient> {
  const c = await RawClient.connect(port);
  clients.push(c);
  c.open();
  await c.next('features', NS.STREAM);
  return c;
}

/** Connects, STARTTLS, restarts and returns the client with the secure stream's features. */
async function secured(port: number, clients: RawClient[]): Promise<{ c: RawClient; features: XmlElement }> {
  const c = await RawClient.connect(port);
  clients.push(c);
  c.open();
  await c.startTls();
  c.open();
  const features = await c.next('features', NS.STREAM);
  return { c, features };
}

async function login(port: number, user: string, resource: string, clients: RawClient[]): Promise<{ client: RawClient; jid: string }> {
  const r = await RawClient.login(port, user, `${user}-pw`, resource);
  clients.push(r.client);
  return r;
}

const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// -----------------------------------------------------------------------------------------
// One server for everything that does not need special timing.
// -----------------------------------------------------------------------------------------

describe('c2s streams', () => {
  let srv: TestServer;
  const clients: RawClient[] = [];
  const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'mallory', 'scram'];

  before(async () => {
    srv = await startTestServer({
      limits: { max_stanza_size: MAX_STANZA, max_depth: MAX_DEPTH, max_attributes: MAX_ATTRS },
    });
    for (const u of users) await srv.createUser(u, `${u}-pw`);
  });
  after(async () => {
    for (const c of clients) c.close();
    await srv.stop();
  });

  describe('stream header (RFC 6120 §4.7, §4.9.3)', () => {
    test('a valid header gets the server header (from, new id, version 1.0) and features', async () => {
      const c = await opened(srv.port, clients);
      const h = c.header!;
      assert.equal(h.ns, NS.STREAM);
      assert.equal(h.prefix, 'stream');
      assert.equal(h.contentNs, NS.CLIENT);
      assert.equal(h.attrs.from, DOMAIN);
      assert.equal(h.attrs.version, '1.0');
      assert.match(h.attrs.id ?? '', /^.{8,}$/);
      assert.equal(c.raw.includes('<stream:error>'), false);
    });

    const cases: Array<[string, string, string]> = [
      ['wrong root namespace', header({ 'xmlns:stream': 'urn:example:not-streams' }), 'invalid-namespace'],
      ["content namespace 'jabber:server'", header({ xmlns: NS.SERVER }), 'invalid-namespace'],
      ["a prefix other than 'stream'", header({}, 'foo'), 'bad-namespace-prefix'],
      ["version='2.0'", header({ version: '2.0' }), 'unsupported-version'],
      ['no version', header({ version: null }), 'unsupported-version'],
      ["to='other.example'", header({ to: 'other.example' }), 'host-unknown'],
      ["no 'to'", header({ to: null }), 'host-unknown'],
      ["from='not a jid@@'", header({ from: 'not a jid@@' }), 'invalid-from'],
    ];
    for (const [what, hdr, condition] of cases) {
      test(`${what} → ${condition}, after the server's own header`, async () => {
        const c = await RawClient.connect(srv.port);
        clients.push(c);
        c.send(hdr);
        await expectStreamError(c, condition);
        assert.equal(c.header?.attrs.from, DOMAIN);
        assert.equal(c.header?.prefix, 'stream');
        assert.equal(c.elements.length, 0, 'no features before the error');
      });
    }
  });

  describe('stream close (RFC 6120 §4.4)', () => {
    test('a non-XMPP greeting (an HTTP request) → not-well-formed, after the server header', async () => {
      const c = await RawClient.connect(srv.port);
      clients.push(c);
      c.send('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await expectStreamError(c, 'not-well-formed');
    });

    test('the client closes its stream: the server answers </stream:stream> and closes the connection', async () => {
      const { client: c } = await login(srv.port, 'grace', 'closing', clients);
      c.send('</stream:stream>');
      await c.waitFor(() => c.ended, 5000, '</stream:stream>');
      await c.waitClosed();
      assert.ok(c.raw.endsWith('</stream:stream>'));
      assert.equal(c.raw.includes('<stream:error>'), false);
      // The session is gone: a message to it bounces.
      const { client: d } = await login(srv.port, 'grace', 'other', clients);
      d.send(`<iq type='get' id='gone' to='grace@localhost/closing'><ping xmlns='${NS.PING}'/></iq>`);
      const r = await d.nextIq('gone');
      assert.equal(stanzaCondition(r), 'service-unavailable');
      d.close();
    });
  });

  describe('restricted and malformed XML (RFC 6120 §11)', () => {
    test('a DOCTYPE before the stream header → restricted-xml', async () => {
      const c = await RawClient.connect(srv.port);
      clients.push(c);
      c.send(`<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY lol 'lol'>]>${header().slice(21)}`);
      await expectStreamError(c, 'restricted-xml');
    });

    const inStream: Array<[string, string | Buffer, string]> = [
      ['a DOCTYPE inside the stream', '<!DOCTYPE foo>', 'restricted-xml'],
      ['a comment', '<!-- hello -->', 'restricted-xml'],
      ['a comment inside a stanza', "<message to='bob@localhost'><!-- x --></message>", 'restricted-xml'],
      ['a processing instruction', "<?foo bar='baz'?>", 'restricted-xml'],
      ['an undefined entity reference', "<message to='bob@localhost'><body>&foo;</body></message>", 'restricted-xml'],
      ['mismatched tags', "<message to='bob@localhost'><body>hi</message>", 'not-well-formed'],
      ['a close tag for another element', "<message to='bob@localhost'><body>hi</body></foo>", 'not-well-formed'],
      ['a stray close tag at stream level', '</foo>', 'not-well-formed'],
      ['an unquoted attribute', '<message to=bob@localhost>', 'not-well-formed'],
      ['a duplicate attribute', "<message to='a@localhost' to='b@localhost'>", 'not-well-formed'],
      ['an invalid character reference', '<message><body>&#0;</body></message>', 'not-well-formed'],
      ['invalid UTF-8 bytes', Buffer.from([0x3c, 0x6d, 0xff, 0xfe, 0x3e]), 'not-well-formed'],
    ];
    for (const [what, data, condition] of inStream) {
      test(`${what} → ${condition}`, async () => {
        const c = await opened(srv.port, clients);
        c.send(data);
        await expectStreamError(c, condition);
      });
    }

    test('whitespace keepalives between stanzas are accepted (RFC 6120 §4.6.1)', async () => {
      const { client: c } = await login(srv.port, 'grace', 'keepalive', clients);
      for (const ws of [' ', '\n', '\t \r\n', ' ']) {
        c.send(ws);
        await sleep(20);
      }
      c.send(`  ${ping('ka1')}\n \n`);
      const r1 = await c.nextIq('ka1');
      assert.equal(r1.attrs.type, 'result');
      c.send(' ');
      await sleep(50);
      const r2 = await c.request(ping('ka2'));
      assert.equal(r2.attrs.type, 'result');
      assert.equal(c.isClosed, false);
      assert.equal(c.raw.includes('<stream:error>'), false);
      c.close();
    });
  });

  describe('limits (RFC 6120 §13.12)', () => {
    test('a stanza over max_stanza_size in one piece → policy-violation', async () => {
      const c = await opened(srv.port, clients);
      c.send(`<message to='bob@localhost'><body>${'a'.repeat(MAX_STANZA + 1000)}</body></message>`);
      await expectStreamError(c, 'policy-violation');
    });

    test('an unterminated stanza sent in many small chunks → policy-violation before it ends', async () => {
      const c = await opened(srv.port, clients);
      c.socket.setNoDelay(true);
      c.send(`<message to='bob@localhost'><body>`);
      let sent = 0;
      while (sent < MAX_STANZA * 3 && !c.raw.includes('<stream:error>')) {
        c.send('b'.repeat(200));
        sent += 200;
        await tick();
      }
      await expectStreamError(c, 'policy-violation');
      assert.ok(sent < MAX_STANZA * 3, `the error came while still sending (${sent} bytes sent)`);
    });

    test("an unterminated entity reference ('&aaaa…') → policy-violation", async () => {
      const c = await opened(srv.port, clients);
      c.send(`<message to='bob@localhost'><body>&`);
      for (let i = 0; i < 30; i++) {
        c.send('a'.repeat(1000));
        await tick();
      }
      await expectStreamError(c, 'policy-violation');
    });

    test('an unfinished start tag with a huge attribute value → policy-violation', async () => {
      const c = await opened(srv.port, clients);
      c.send(`<message to='${'a'.repeat(MAX_STANZA + 1000)}`);
      await expectStreamError(c, 'policy-violation');
    });

    test('a huge stream header → policy-violation', async () => {
      const c = await RawClient.connect(srv.port);
      clients.push(c);
      c.send(`<stream:stream xmlns:stream='${NS.STREAM}' xmlns='jabber:client' to='localhost' x='${'a'.repeat(MAX_STANZA + 1000)}`);
      await expectStreamError(c, 'policy-violation');
    });

    test(`nesting deeper than max_depth (${MAX_DEPTH}) → policy-violation`, async () => {
      const c = await opened(srv.port, clients);
      const depth = MAX_DEPTH + 2;
      c.send(`<message to='bob@localhost'>${'<x>'.repeat(depth)}${'</x>'.repeat(depth)}</message>`);
      await expectStreamError(c, 'policy-violation');
    });

    test(`more than max_attributes (${MAX_ATTRS}) attributes → policy-violation`, async () => {
      const c = await opened(srv.port, clients);
      const attrs = Array.from({ length: MAX_ATTRS + 1 }, (_, i) => ` a${i}='${i}'`).join('');
      c.send(`<message to='bob@localhost'${attrs}/>`);
      await expectStreamError(c, 'policy-violation');
    });

    test('stanzas within the limits are delivered (size, depth, attributes just under)', async () => {
      const a = await login(srv.port, 'alice', 'limits', clients);
      const b = await login(srv.port, 'bob', 'limits', clients);
      const body = 'z'.repeat(MAX_STANZA - 600);
      const deep = `${'<x xmlns="urn:example:deep">'}${'<x>'.repeat(MAX_DEPTH - 3)}${'</x>'.repeat(MAX_DEPTH - 3)}</x>`;
      // to, id, type and these: exactly max_attributes.
      const attrs = Array.from({ length: MAX_ATTRS - 3 }, (_, i) => ` a${i}='${i}'`).join('');
      const stanza = `<message to='${b.jid}' id='big' type='chat'${attrs}><body>${body}</body>${deep}</message>`;
      assert.ok(stanza.length < MAX_STANZA && stanza.length > MAX_STANZA - 500, String(stanza.length));
      a.client.send(stanza);
      const m = await b.client.nextWhere((e) => e.name === 'message' && e.attrs.id === 'big');
      assert.equal(m.getChildText('body'), body);
      assert.equal(m.attrs.from, a.jid);
      a.client.close();
      b.client.close();
    });

    test('a stream killed after login (malformed XML, oversize, bad UTF-8) does not disturb the others', async () => {
      const a = await login(srv.port, 'alice', 'iso', clients);
      const b = await login(srv.port, 'bob', 'iso', clients);
      const c = await login(srv.port, 'carol', 'iso', clients);
      const bad1 = await login(srv.port, 'dave', 'bad1', clients);
      const bad2 = await login(srv.port, 'erin', 'bad2', clients);
      const bad3 = await login(srv.port, 'dave', 'bad3', clients);

      // Start a message, then break it, while another client is mid-conversation.
      c.client.send(`<message to='${b.jid}' id='before' type='chat'><body>before</body></message>`);
      bad1.client.send(`<message to='${a.jid}' type='chat'><body>half`);
      bad1.client.send('</message>');
      bad2.client.send(`<message to='${a.jid}' type='chat'><body>`);
      for (let i = 0; i < 25 && !bad2.client.raw.includes('<stream:error>'); i++) {
        bad2.client.send('x'.repeat(1000));
        await tick();
      }
      bad3.client.send(Buffer.from([0xc3, 0x28]));
      await Promise.all([
        expectStreamError(bad1.client, 'not-well-formed'),
        expectStreamError(bad2.client, 'policy-violation'),
        expectStreamError(bad3.client, 'not-well-formed'),
      ]);

      const pong = await a.client.request(ping('iso-ping'));
      assert.equal(pong.attrs.type, 'result');
      assert.equal(pong.attrs.from, DOMAIN);
      const before = await b.client.nextWhere((e) => e.name === 'message' && e.attrs.id === 'before');
      assert.equal(before.attrs.from, c.jid);
      c.client.send(`<message to='${b.jid}' id='after' type='chat'><body>after</body></message>`);
      const afterMsg = await b.client.nextWhere((e) => e.name === 'message' && e.attrs.id === 'after');
      assert.equal(afterMsg.getChildText('body'), 'after');
      assert.equal(afterMsg.attrs.from, c.jid);
      // Nothing of the broken streams reached alice.
      assert.equal(a.client.elements.filter((e) => e.name === 'message').length, 0);
      for (const x of [a, b, c]) {
        assert.equal(x.client.isClosed, false);
        assert.equal(x.client.raw.includes('<stream:error>'), false);
        x.client.close();
      }
    });
  });

  describe('STARTTLS and SASL (RFC 6120 §5, §6)', () => {
    test('before STARTTLS the features list only <starttls><required/></starttls>', async () => {
      const c = await RawClient.connect(srv.port);
      clients.push(c);
      c.open();
      const f = await c.next('features', NS.STREAM);
      const children = f.getChildren();
      assert.equal(children.length, 1, f.toString());
      assert.equal(children[0]!.name, 'starttls');
      assert.equal(children[0]!.ns, NS.TLS);
      assert.ok(children[0]!.getChild('required'), 'required');
      assert.equal(f.getChild('mechanisms', NS.SASL), undefined);
      c.close();
    });

    test('<auth/> before TLS → <failure><encryption-required/>', async () => {
      const c = await opened(srv.port, clients);
      c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${buildPlain('alice', 'alice-pw').toString('base64')}</auth>`);
      const f = await c.next('failure', NS.SASL);
      assert.equal(saslCondition(f), 'encryption-required');
      assert.equal(c.elements.find((e) => e.name === 'success'), undefined);
    });

    test('a stanza before authentication → not-authorized (before and after STARTTLS)', async () => {
      const c1 = await opened(srv.port, clients);
      c1.send(ping('early1'));
      await expectStreamError(c1, 'not-authorized');
      const { c: c2 } = await secured(srv.port, clients);
      c2.send(`<message to='bob@localhost'><body>hi</body></message>`);
      await expectStreamError(c2, 'not-authorized');
      assert.equal(c2.elements.find((e) => e.name === 'iq' || e.name === 'message'), undefined);
    });

    test('after STARTTLS the features offer SASL mechanisms with SCRAM-SHA-256-PLUS and XEP-0440 tls-exporter', async () => {
      const { features } = await secured(srv.port, clients);
      assert.equal(features.getChild('starttls', NS.TLS), undefined);
      const mechs = features.getChild('mechanisms', NS.SASL)!.getChildren('mechanism').map((m) => m.text());
      assert.ok(mechs.includes('SCRAM-SHA-256-PLUS'), mechs.join());
      assert.ok(mechs.includes('SCRAM-SHA-256'));
      assert.ok(mechs.includes('PLAIN'));
      const cb = features.getChild('sasl-channel-binding', 'urn:xmpp:sasl-cb:0');
      assert.ok(cb, features.toString());
      assert.deepEqual(cb.getChildren('channel-binding').map((e) => e.attrs.type), ['tls-exporter']);
    });

    test('an unknown mechanism → invalid-mechanism', async () => {
      const { c } = await secured(srv.port, clients);
      c.send(`<auth xmlns='${NS.SASL}' mechanism='X-UNKNOWN'>AAAA</auth>`);
      assert.equal(saslCondition(await c.next('failure', NS.SASL)), 'invalid-mechanism');
    });

    test('PLAIN with a wrong password → not-authorized; the stream stays open for another try', async () => {
      const { c } = await secured(srv.port, clients);
      c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${buildPlain('alice', 'wrong').toString('base64')}</auth>`);
      assert.equal(saslCondition(await c.next('failure', NS.SASL)), 'not-authorized');
      c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${buildPlain('alice', 'alice-pw').toString('base64')}</auth>`);
      await c.next('success', NS.SASL);
    });

    test('<abort/> → <failure><aborted/>, and a new exchange can follow', async () => {
      const { c } = await secured(srv.port, clients);
      const scram = new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'alice-pw' });
      c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256'>${scram.first().toString('base64')}</auth>`);
      await c.next('challenge', NS.SASL);
      c.send(`<abort xmlns='${NS.SASL}'/>`);
      assert.equal(saslCondition(await c.next('failure', NS.SASL)), 'aborted');
      c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${buildPlain('alice', 'alice-pw').toString('base64')}</auth>`);
      await c.next('success', NS.SASL);
    });

    test('bad base64 → incorrect-encoding', async () => {
      const { c } = await secured(srv.port, clients);
      c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>!!not*base64</auth>`);
      assert.equal(saslCondition(await c.next('failure', NS.SASL)), 'incorrect-encoding');
    });

    test('after SASL success the server waits for a restart, then offers <bind/> and optional <session/>', async () => {
      const { c } = await secured(srv.port, clients);
      const oldId = c.header!.attrs.id;
      c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${buildPlain('alice', 'alice-pw').toString('base64')}</auth>`);
      const success = await c.next('success', NS.SASL);
      assert.equal(success.text(), '');
      c.restart();
      const headersBefore = c.headers;
      await sleep(100);
      assert.equal(c.headers, headersBefore, 'no new header before the client restarts');
      assert.equal(c.elements.length, 0, 'nothing sent before the restart');
      c.open();
      const f = await c.next('features', NS.STREAM);
      assert.equal(c.headers, headersBefore + 1);
      assert.notEqual(c.header!.attrs.id, oldId, 'a new stream id after the restart (RFC 6120 §4.7.3)');
      assert.ok(f.getChild('bind', NS.BIND), f.toString());
      assert.ok(f.getChild('session', NS.SESSION)?.getChild('optional'), 'session is optional');
      assert.equal(f.getChild('mechanisms', NS.SASL), undefined);
      assert.equal(f.getChild('starttls', NS.TLS), undefined);
      const r = await c.bind('restarted');
      assert.equal(r.attrs.type, 'result');
      assert.equal(r.getChild('bind', NS.BIND)?.getChildText('jid'), 'alice@localhost/restarted');
      // The legacy session request is accepted (RFC 3921 §3).
      const s = await c.request(xml('iq', { type: 'set', id: 'sess' }, xml('session', { xmlns: NS.SESSION })));
      assert.equal(s.attrs.type, 'result');
      c.close();
    });

    test('what the server writes in the turn its TLS handshake ends leaves whole and in order, even when it closes the stream then', async () => {
      // The server holds that turn's output until the handshake's own records have left
      // (TcpTransport.holdAfterHandshake). Here the client sends its header and a stanza as
      // soon as its handshake is done, so the header, the stream error and the close all fall
      // in (or right after) the held turn; nothing may be lost or reordered. Direct TLS, then STARTTLS.
      const d = await RawClient.connect(srv.tlsPort, { tls: true });
      clients.push(d);
      d.open();
      d.send(`<message to='bob@localhost'><body>early</body></message>`);
      await expectStreamError(d, 'not-authorized');

      const s = await RawClient.connect(srv.port);
      clients.push(s);
      s.open();
      await s.startTls();
      s.open();
      s.send(`<message to='bob@localhost'><body>early</body></message>`);
      await expectStreamError(s, 'not-authorized');
    });

    test('direct TLS (XEP-0368) goes straight to the SASL features', async () => {
      const c = await RawClient.connect(srv.tlsPort, { tls: true });
      clients.push(c);
      assert.equal((c.socket as tls.TLSSocket).alpnProtocol, 'xmpp-client');
      c.open();
      const f = await c.next('features', NS.STREAM);
      assert.equal(f.getChild('starttls', NS.TLS), undefined);
      const mechs = f.getChild('mechanisms', NS.SASL)!.getChildren('mechanism').map((m) => m.text());
      assert.ok(mechs.includes('SCRAM-SHA-256-PLUS') && mechs.includes('PLAIN'), mechs.join());
      assert.ok(f.getChild('sasl-channel-binding', 'urn:xmpp:sasl-cb:0')?.getChild('channel-binding'));
      c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${buildPlain('alice', 'alice-pw').toString('base64')}</auth>`);
      await c.next('success', NS.SASL);
      c.restart();
      c.open();
      await c.next('features', NS.STREAM);
      const r = await c.bind('direct');
      assert.equal(r.getChild('bind', NS.BIND)?.getChildText('jid'), 'alice@localhost/direct');
      c.close();
    });

    async function scramLogin(
      plus: boolean,
      cbData?: Buffer,
      initialResponse = true,
    ): Promise<{ c: RawClient; outcome: XmlElement; scram: ScramClient }> {
      const { c, features } = await secured(srv.port, clients);
      const mech = plus ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256';
      const offered = features.getChild('mechanisms', NS.SASL)!.getChildren('mechanism').map((m) => m.text());
      assert.ok(offered.includes(mech), offered.join());
      const tlsSocket = c.socket as tls.TLSSocket;
      const data = cbData ?? tlsSocket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
      const scram = new ScramClient({
        hash: 'SHA-256',
        username: 'scram',
        password: 'scram-pw',
        plus,
        channelBinding: plus ? { type: 'tls-exporter', data } : null,
      });
      if (initialResponse) {
        c.send(`<auth xmlns='${NS.SASL}' mechanism='${mech}'>${scram.first().toString('base64')}</auth>`);
      } else {
        // RFC 6120 §6.4.2: no initial response; the server sends an empty challenge first.
        c.send(`<auth xmlns='${NS.SASL}' mechanism='${mech}'/>`);
        const empty = await c.next('challenge', NS.SASL);
        assert.equal(empty.text(), '');
        c.send(`<response xmlns='${NS.SASL}'>${scram.first().toString('base64')}</response>`);
      }
      const challenge = await c.next('challenge', NS.SASL);
      const serverFirst = Buffer.from(challenge.text(), 'base64');
      assert.match(serverFirst.toString(), /^r=[^,]+,s=[^,]+,i=\d+$/);
      const final = await scram.final(serverFirst);
      c.send(`<response xmlns='${NS.SASL}'>${final.toString('base64')}</response>`);
      const outcome = await c.nextWhere((e) => e.ns === NS.SASL && (e.name === 'success' || e.name === 'failure'));
      return { c, outcome, scram };
    }

    for (const plus of [false, true]) {
      const mech = plus ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256';
      test(`${mech} login with ScramClient; the server signature verifies; bind works`, async () => {
        const { c, outcome, scram } = await scramLogin(plus);
        assert.equal(outcome.name, 'success', outcome.toString());
        scram.verifyServerFinal(Buffer.from(outcome.text(), 'base64'));
        c.restart();
        c.open();
        await c.next('features', NS.STREAM);
        const r = await c.bind(mech);
        assert.equal(r.getChild('bind', NS.BIND)?.getChildText('jid'), `scram@localhost/${mech}`);
        c.close();
      });
    }

    test('SCRAM-SHA-256 without an initial response (empty challenge first)', async () => {
      const { c, outcome, scram } = await scramLogin(false, undefined, false);
      assert.equal(outcome.name, 'success', outcome.toString());
      scram.verifyServerFinal(Buffer.from(outcome.text(), 'base64'));
      c.close();
    });

    test('SCRAM-SHA-256-PLUS with the wrong channel binding data fails', async () => {
      const { outcome } = await scramLogin(true, Buffer.alloc(32, 7));
      assert.equal(outcome.name, 'failure', outcome.toString());
      assert.equal(saslCondition(outcome), 'not-authorized', outcome.toString());
    });
  });

  describe('resource binding (RFC 6120 §7)', () => {
    test('no resource requested → the server generates one', async () => {
      const { client: c } = await RawClient.authenticate(srv.port, 'frank', 'frank-pw');
      clients.push(c);
      const r = await c.bind();
      assert.equal(r.attrs.type, 'result');
      const jid = r.getChild('bind', NS.BIND)?.getChildText('jid') ?? '';
      assert.match(jid, /^frank@localhost\/.+$/);
      const pong = await c.request(ping('gen'));
      assert.equal(pong.attrs.type, 'result');
      assert.equal(pong.attrs.to, jid);
      c.close();
    });

    test('an invalid resource → bad-request; a valid one can follow on the same stream', async () => {
      const { client: c } = await RawClient.authenticate(srv.port, 'frank', 'frank-pw');
      clients.push(c);
      const bad = await c.bind('x'.repeat(1100), 'b1');
      assert.equal(bad.attrs.type, 'error');
      assert.equal(stanzaCondition(bad), 'bad-request');
      const bad2 = await c.bind('bad\u0085control', 'b2');
      assert.equal(stanzaCondition(bad2), 'bad-request');
      const good = await c.bind('fine', 'b3');
      assert.equal(good.getChild('bind', NS.BIND)?.getChildText('jid'), 'frank@localhost/fine');
      c.close();
    });

    test('a second login with the same full JID: the new session is bound, the old one gets conflict', async () => {
      const first = await login(srv.port, 'frank', 'dup', clients);
      const a = await login(srv.port, 'alice', 'dup-watcher', clients);
      const second = await login(srv.port, 'frank', 'dup', clients);
      assert.equal(second.jid, 'frank@localhost/dup');
      assert.equal(first.jid, second.jid);
      await expectStreamError(first.client, 'conflict');
      const pong = await second.client.request(ping('after-conflict'));
      assert.equal(pong.attrs.type, 'result');
      a.client.send(`<message to='${second.jid}' id='to-new' type='chat'><body>hi</body></message>`);
      const m = await second.client.nextWhere((e) => e.name === 'message' && e.attrs.id === 'to-new');
      assert.equal(m.attrs.from, a.jid);
      second.client.close();
      a.client.close();
    });
  });

  describe('routing (RFC 6120 §8, §10)', () => {
    let a: { client: RawClient; jid: string };
    let b: { client: RawClient; jid: string };
    before(async () => {
      a = await login(srv.port, 'alice', 'route', clients);
      b = await login(srv.port, 'bob', 'route', clients);
    });

    test("the server stamps 'from' with the sender's full JID", async () => {
      a.client.send(`<message to='${b.jid}' id='m1' type='chat'><body>one</body></message>`);
      a.client.send(`<message to='${b.jid}' from='alice@localhost' id='m2' type='chat'><body>two</body></message>`);
      a.client.send(`<message to='${b.jid}' from='${a.jid}' id='m3' type='chat'><body>three</body></message>`);
      for (const id of ['m1', 'm2', 'm3']) {
        const m = await b.client.nextWhere((e) => e.name === 'message' && e.attrs.id === id);
        assert.equal(m.attrs.from, 'alice@localhost/route', id);
        assert.equal(m.attrs.to, b.jid);
      }
    });

    test("a forged 'from' (another user's JID) → invalid-from stream error", async () => {
      const m = await login(srv.port, 'mallory', 'forge', clients);
      m.client.send(`<message to='${b.jid}' from='${a.jid}' id='forged' type='chat'><body>it is alice</body></message>`);
      await expectStreamError(m.client, 'invalid-from');
      await sleep(50);
      assert.equal(b.client.elements.find((e) => e.attrs.id === 'forged'), undefined, 'the forged message was not delivered');
    });

    test('an iq get in an unknown namespace to the server → service-unavailable', async () => {
      const r = await a.client.request(`<iq type='get' id='u1' to='localhost'><query xmlns='urn:example:unknown'/></iq>`);
      assert.equal(r.attrs.type, 'error');
      assert.equal(r.attrs.from, DOMAIN);
      assert.equal(r.attrs.to, a.jid);
      assert.equal(stanzaCondition(r), 'service-unavailable');
      assert.equal(r.getChild('error')?.attrs.type, 'cancel');
    });

    test('an iq of type result or error to the server is never answered', async () => {
      a.client.send(`<iq type='result' id='r1' to='localhost'/>`);
      a.client.send(`<iq type='result' id='r2' to='localhost'><query xmlns='urn:example:unknown'/></iq>`);
      a.client.send(
        `<iq type='error' id='r3' to='localhost'><error type='cancel'><service-unavailable xmlns='${NS.STANZAS}'/></error></iq>`,
      );
      const pong = await a.client.request(ping('r-marker'));
      assert.equal(pong.attrs.type, 'result');
      await sleep(50);
      const answered = a.client.elements.filter((e) => ['r1', 'r2', 'r3'].includes(e.attrs.id ?? ''));
      assert.deepEqual(answered.map((e) => e.toString()), []);
      assert.equal(a.client.isClosed, false);
    });

    test('an iq get with two payload children → bad-request', async () => {
      const r = await a.client.request(
        `<iq type='get' id='two' to='localhost'><ping xmlns='${NS.PING}'/><query xmlns='${NS.VERSION}'/></iq>`,
      );
      assert.equal(r.attrs.type, 'error');
      assert.equal(stanzaCondition(r), 'bad-request');
    });

    test('disco#info to the server: identity server/im and the core features', async () => {
      const r = await a.client.request(xml('iq', { type: 'get', id: 'disco', to: DOMAIN }, xml('query', { xmlns: NS.DISCO_INFO })));
      assert.equal(r.attrs.type, 'result');
      assert.equal(r.attrs.from, DOMAIN);
      const q = r.getChild('query', NS.DISCO_INFO)!;
      const ids = q.getChildren('identity').map((i) => `${i.attrs.category}/${i.attrs.type}`);
      assert.ok(ids.includes('server/im'), ids.join());
      const features = q.getChildren('feature').map((f) => f.attrs.var);
      for (const f of [NS.DISCO_INFO, NS.DISCO_ITEMS, NS.PING, NS.VERSION, NS.TIME]) assert.ok(features.includes(f), f);
    });

    test('jabber:iq:version and urn:xmpp:time answer', async () => {
      const v = await a.client.request(xml('iq', { type: 'get', id: 'ver', to: DOMAIN }, xml('query', { xmlns: NS.VERSION })));
      assert.equal(v.attrs.type, 'result');
      const vq = v.getChild('query', NS.VERSION)!;
      assert.equal(vq.getChildText('name'), 'Parley');
      assert.ok((vq.getChildText('version') ?? '') !== '');
      const t = await a.client.request(xml('iq', { type: 'get', id: 'time', to: DOMAIN }, xml('time', { xmlns: NS.TIME })));
      assert.equal(t.attrs.type, 'result');
      const tq = t.getChild('time', NS.TIME)!;
      assert.match(tq.getChildText('tzo') ?? '', /^[+-]\d\d:\d\d$/);
      const utc = Date.parse(tq.getChildText('utc') ?? '');
      assert.ok(Math.abs(utc - Date.now()) < 60_000, tq.toString());
      assert.match(tq.getChildText('utc') ?? '', /Z$/);
    });

    test("a ping with no 'to' is answered", async () => {
      const r = await a.client.request(xml('iq', { type: 'get', id: 'noto' }, xml('ping', { xmlns: NS.PING })));
      assert.equal(r.attrs.type, 'result');
      assert.equal(r.attrs.to, a.jid);
    });

    test('a message to a nonexistent local user → service-unavailable', async () => {
      a.client.send(`<message to='nobody@localhost' id='nx' type='chat'><body>hello?</body></message>`);
      const e = await a.client.nextWhere((x) => x.name === 'message' && x.attrs.id === 'nx');
      assert.equal(e.attrs.type, 'error');
      assert.equal(e.attrs.from, 'nobody@localhost');
      assert.equal(stanzaCondition(e), 'service-unavailable');
    });

    test('a message to a non-local domain → remote-server-not-found', async () => {
      a.client.send(`<message to='someone@remote.example' id='rem' type='chat'><body>hello</body></message>`);
      const e = await a.client.nextWhere((x) => x.name === 'message' && x.attrs.id === 'rem');
      assert.equal(e.attrs.type, 'error');
      assert.equal(e.attrs.from, 'someone@remote.example');
      assert.equal(stanzaCondition(e), 'remote-server-not-found');
    });
  });
});

// -----------------------------------------------------------------------------------------
// Servers with their own settings.
// -----------------------------------------------------------------------------------------

describe('authentication failure throttle (RFC 6120 §6.4.5, §13.9)', () => {
  let srv: TestServer;
  const clients: RawClient[] = [];
  const BASE = 100;
  before(async () => {
    srv = await startTestServer({ auth: { failure_delay: `${BASE}ms`, max_failure_delay: '2s' } });
    await srv.createUser('alice', 'alice-pw');
  });
  after(async () => {
    for (const c of clients) c.close();
    await srv.stop();
  });

  async function failOnce(c: RawClient): Promise<number> {
    const t0 = performance.now();
    c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${buildPlain('alice', 'nope').toString('base64')}</auth>`);
    const f = await c.next('failure', NS.SASL);
    assert.equal(saslCondition(f), 'not-authorized');
    return performance.now() - t0;
  }

  test('each further failure from the same address is answered later', async () => {
    const { c: c1 } = await secured(srv.port, clients);
    const d1 = await failOnce(c1);
    // A new connection from the same address does not start from zero.
    const { c: c2 } = await secured(srv.port, clients);
    const d2 = await failOnce(c2);
    const d3 = await failOnce(c2);
    assert.ok(d1 >= BASE * 0.9, `first failure delayed by failure_delay (${d1.toFixed(0)} ms)`);
    assert.ok(d2 >= BASE * 1.8 && d2 > d1 + BASE * 0.5, `second failure later (${d1.toFixed(0)} → ${d2.toFixed(0)} ms)`);
    assert.ok(d3 >= BASE * 3.6 && d3 > d2 + BASE, `third failure later still (${d2.toFixed(0)} → ${d3.toFixed(0)} ms)`);
    // A success clears the record (and is not delayed).
    const t0 = performance.now();
    c2.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${buildPlain('alice', 'alice-pw').toString('base64')}</auth>`);
    await c2.next('success', NS.SASL);
    assert.ok(performance.now() - t0 < BASE * 2);
    const { c: c3 } = await secured(srv.port, clients);
    const d4 = await failOnce(c3);
    assert.ok(d4 < BASE * 1.8, `after a success the delay starts over (${d4.toFixed(0)} ms)`);
  });
});

describe('timeouts: auth_timeout and server pings (RFC 6120 §4.6, XEP-0199 §4.1)', () => {
  let srv: TestServer;
  const clients: RawClient[] = [];
  before(async () => {
    srv = await startTestServer({ c2s: { auth_timeout: '1s' }, ping: { interval: '1s', timeout: '1s' } });
    await srv.createUser('alice', 'alice-pw');
    await srv.createUser('bob', 'bob-pw');
    await srv.createUser('carol', 'carol-pw');
  });
  after(async () => {
    for (const c of clients) c.close();
    await srv.stop();
  });

  test('a connection that never opens a stream, never authenticates or never binds gets connection-timeout', async () => {
    const t0 = performance.now();
    const mute = await RawClient.connect(srv.port); // not even a stream header
    clients.push(mute);
    const idle = await opened(srv.port, clients);
    const { client: unbound } = await RawClient.authenticate(srv.port, 'carol', 'carol-pw');
    clients.push(unbound);
    await Promise.all([mute, idle, unbound].map((c) => expectStreamError(c, 'connection-timeout')));
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 900 && elapsed < 4000, `after about auth_timeout (${elapsed.toFixed(0)} ms)`);
  });

  test("a client that never answers the server's ping gets connection-timeout; one that answers stays", async () => {
    const silent = await login(srv.port, 'alice', 'silent', clients);
    const polite = await login(srv.port, 'bob', 'polite', clients);
    polite.client.answerPings = true;
    const t0 = performance.now();
    // The silent client sees the ping (XEP-0199 §4.1) and does not answer it.
    const p = await silent.client.nextWhere((e) => e.name === 'iq' && e.attrs.type === 'get' && !!e.getChild('ping', NS.PING), 6000);
    assert.equal(p.attrs.from, DOMAIN);
    assert.equal(p.attrs.to, silent.jid);
    await expectStreamError(silent.client, 'connection-timeout');
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 1500, `idle interval + ping timeout (${elapsed.toFixed(0)} ms)`);
    await polite.client.waitFor(() => polite.client.pingsReceived >= 1, 4000, 'a ping to the polite client');
    // Stay idle long enough for an unanswered ping to have timed out.
    await sleep(1200);
    assert.equal(polite.client.isClosed, false);
    assert.equal(polite.client.raw.includes('<stream:error>'), false);
    const pong = await polite.client.request(ping('still-here'));
    assert.equal(pong.attrs.type, 'result');
  });
});

describe('shutdown (RFC 6120 §4.9.3.20)', () => {
  let srv: TestServer;
  const clients: RawClient[] = [];
  before(async () => {
    srv = await startTestServer();
    await srv.createUser('alice', 'alice-pw');
  });
  after(async () => {
    for (const c of clients) c.close();
    await srv.stop();
  });

  test('server.stop() sends every client <system-shutdown/> then </stream:stream>', async () => {
    const bound = await login(srv.port, 'alice', 'bye', clients);
    const unauthenticated = await opened(srv.port, clients);
    const { c: secure } = await secured(srv.port, clients);
    const direct = await RawClient.connect(srv.tlsPort, { tls: true });
    clients.push(direct);
    direct.open();
    await direct.next('features', NS.STREAM);
    const t0 = performance.now();
    await srv.server.stop();
    assert.ok(performance.now() - t0 < 2500, 'stop() does not hang on connected clients');
    await Promise.all(
      [bound.client, unauthenticated, secure, direct].map((c) => expectStreamError(c, 'system-shutdown')),
    );
    assert.equal(srv.server.streamCount, 0);
  });
});
