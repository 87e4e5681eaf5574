/**
 * Connections and logins of the load generator: raw node:net/node:tls sockets (or a
 * WebSocket seen as one), stanzas built as strings, the server's replies read by string
 * scanning. Written for any XMPP server, not only Parley: attributes in either quote,
 * any namespace prefix on stream-level elements, whitespace between elements, stanzas the
 * client did not ask for (its own presence, a room subject) skipped where they may come.
 *
 * One login is: connect → stream header → [STARTTLS → TLS handshake (full, no resumption)
 * → header] → SASL SCRAM (server signature verified) → stream restart → bind (a unique
 * resource) [→ session, only where the server says it is not optional] → roster get →
 * initial presence → ping (XEP-0199) to the server and its result.
 */
import net from 'node:net';
import tls from 'node:tls';
import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import { ScramClient, type ScramMechanism } from './scram.ts';

export const NS_STREAM = 'http://etherx.jabber.org/streams';
export const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
export const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
export const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
export const NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session';
export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
export const NS_REGISTER = 'jabber:iq:register';

/** How every connection of the run is made (set once by load.ts). */
export interface LoginConfig {
  host: string;
  port: number;
  domain: string;
  transport: 'tcp' | 'ws' | 'wss';
  /** STARTTLS before authenticating (tcp only). */
  tls: boolean;
  mechanism: ScramMechanism;
  password: string;
}

let cfg: LoginConfig | null = null;
export function configureLogin(c: LoginConfig): void {
  cfg = c;
}
function config(): LoginConfig {
  if (!cfg) throw new Error('configureLogin() first');
  return cfg;
}

/** A login that has not finished after this long fails. */
const LOGIN_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------
// Scanning
// ---------------------------------------------------------------------------

/**
 * Splits an XMPP stream into its top-level elements (stanzas and stream-level elements),
 * incrementally. Tracks element depth by tags; skips the XML declaration, processing
 * instructions, comments and stream headers (`<stream:stream …>`, any prefix); returns a
 * lone stream end tag as an element of its own. Assumes what every server sends: no `>`
 * unescaped inside attribute values. For logins and setup phases; the measured message
 * paths scan for their stanzas directly.
 */
export class StanzaReader {
  private buf = '';
  private pos = 0;
  private depth = 0;
  private start = 0;
  /** Stream headers seen. */
  headers = 0;

  feed(s: string): void {
    const keep = this.depth > 0 ? this.start : this.pos;
    if (keep > 0) {
      this.buf = this.buf.slice(keep);
      this.pos -= keep;
      this.start = 0;
    }
    this.buf += s;
  }

  /** The next complete top-level element, or null until more input arrives. */
  next(): string | null {
    const buf = this.buf;
    for (;;) {
      const lt = buf.indexOf('<', this.pos);
      if (lt < 0) {
        if (this.depth === 0) this.pos = buf.length;
        return null;
      }
      const c = buf.charCodeAt(lt + 1);
      if (c === 33 /* ! */) {
        // A comment or CDATA section.
        const close = buf.startsWith('<![CDATA[', lt) ? ']]>' : '-->';
        const e = buf.indexOf(close, lt + 2);
        if (e < 0) {
          this.pos = lt;
          return null;
        }
        this.pos = e + close.length;
        continue;
      }
      const gt = buf.indexOf('>', lt);
      if (gt < 0) {
        this.pos = lt;
        return null;
      }
      this.pos = gt + 1;
      if (c === 63 /* ? */) continue;
      if (c === 47 /* / */) {
        if (this.depth === 0) return buf.slice(lt, gt + 1);
        if (--this.depth === 0) return buf.slice(this.start, gt + 1);
        continue;
      }
      const selfClosing = buf.charCodeAt(gt - 1) === 47;
      if (this.depth === 0) {
        if (selfClosing) return buf.slice(lt, gt + 1);
        const name = tagName(buf, lt);
        if (name === 'stream' || name.endsWith(':stream')) {
          this.headers++;
          continue;
        }
        this.start = lt;
        this.depth = 1;
        continue;
      }
      if (!selfClosing) this.depth++;
    }
  }

  /** Input not yet returned as an element (valid between elements). */
  rest(): string {
    return this.depth === 0 ? this.buf.slice(this.pos) : this.buf.slice(this.start);
  }
}

/** The qualified name of the tag starting at `lt` (`<name …`). */
function tagName(s: string, lt: number): string {
  let e = lt + 1;
  for (;;) {
    const ch = s.charCodeAt(e);
    if (Number.isNaN(ch) || ch === 32 || ch === 62 || ch === 47 || ch === 9 || ch === 10 || ch === 13) break;
    e++;
  }
  return s.slice(lt + 1, e);
}

/** The local name of an element (`stream:features` → `features`). */
export function localName(el: string): string {
  const q = tagName(el, el.indexOf('<'));
  return q.slice(q.indexOf(':') + 1);
}

/** The value of attribute `name` in the start tag of `el` (either quote; entities left as they are), or null. */
export function attr(el: string, name: string): string | null {
  const end = el.indexOf('>');
  let i = el.indexOf(` ${name}=`);
  // Any whitespace before the name.
  if (i < 0 || i > end) {
    const m = new RegExp(`\\s${name.replace(/[.:]/g, '\\$&')}\\s*=\\s*(['"])`).exec(el.slice(0, end));
    if (!m) return null;
    i = m.index + m[0].length - 1;
    const q = m[1]!;
    return el.slice(i + 1, el.indexOf(q, i + 1));
  }
  const q = el[i + name.length + 2];
  if (q !== "'" && q !== '"') return null;
  const v = i + name.length + 3;
  return el.slice(v, el.indexOf(q, v));
}

/**
 * The value of attribute `name` (given with its leading space and `=`: ` type=`) in the
 * start tag `tag`, as fast as it gets: one indexOf and the quote. For the message paths.
 */
export function fastAttr(tag: string, spaced: string): string | null {
  const i = tag.indexOf(spaced);
  if (i < 0) return null;
  const v = i + spaced.length;
  const q = tag.charCodeAt(v);
  return tag.slice(v + 1, tag.indexOf(q === 34 ? '"' : "'", v + 1));
}

/** The character data of the first `<name …>data</name>` in `el` ('' when empty or absent). */
export function inner(el: string, name: string): string {
  const open = el.indexOf(`<${name}`);
  if (open < 0) return '';
  const gt = el.indexOf('>', open);
  if (el.charCodeAt(gt - 1) === 47) return '';
  const close = el.indexOf(`</${name}>`, gt);
  return close < 0 ? '' : el.slice(gt + 1, close);
}

/** Whether `el` carries `<status code='c'/>` (muc#user), either quote. */
export function hasStatus(el: string, code: number): boolean {
  return el.includes(`code='${code}'`) || el.includes(`code="${code}"`);
}

/** The defined condition and text of an error element, for messages. */
export function describeError(el: string): string {
  const m = /<error[^>]*>\s*<([a-z-]+)/.exec(el) ?? /<failure[^>]*>\s*<([a-z-]+)/.exec(el) ?? /<stream:error[^>]*>\s*<([a-z-]+)/.exec(el);
  const text = /<text[^>]*>([^<]*)<\/text>/.exec(el);
  return `${m ? m[1] : 'error'}${text ? ` (${text[1]})` : ''}: ${el.slice(0, 400)}`;
}

export const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;');

// ---------------------------------------------------------------------------
// Sockets
// ---------------------------------------------------------------------------

/** What the scenarios use of a session's connection: a socket, or a WebSocket seen as one ({@link WsSocket}). */
export interface BenchSocket extends EventEmitter {
  write(data: string): unknown;
  end(data: string): unknown;
  destroy(): unknown;
}

/** A logged-in session: its connection, full JID, and input received after the login's last answer. */
export interface Bound {
  socket: BenchSocket;
  jid: string;
  /** Received after the ping result (e.g. the session's own presence): the scenario's reader starts with it. */
  rest: string;
}

let sharedContext: tls.SecureContext | null = null;
/** One client TLS context for all connections (tls.connect would otherwise build one per connection). */
function clientContext(): tls.SecureContext {
  return (sharedContext ??= tls.createSecureContext());
}

/**
 * A WebSocket session (RFC 7395) behind the socket interface: each received message is a
 * 'data' event; a write of several stanzas is sent as one message per stanza (§3.3.3), the
 * batch in one TCP write; `end()` sends `<close/>`.
 */
class WsSocket extends EventEmitter {
  private readonly ws: WebSocket;
  private raw: net.Socket | null = null;

  constructor(ws: WebSocket) {
    super();
    this.ws = ws;
    ws.on('message', (d) => this.emit('data', d as Buffer));
    ws.on('close', () => this.emit('close'));
    ws.on('error', (e) => this.emit('error', e));
  }

  write(data: string): void {
    this.raw ??= (this.ws as unknown as { _socket: net.Socket })._socket;
    this.raw.cork();
    let i = 0;
    for (;;) {
      const j = data.indexOf('</message>', i);
      if (j < 0) break;
      this.ws.send(data.slice(i, j + 10));
      i = j + 10;
    }
    if (i < data.length) this.ws.send(data.slice(i));
    this.raw.uncork();
  }

  /** `</stream:stream>` on TCP; `<close/>` here (RFC 7395 §3.6). */
  end(_tcpClose: string): void {
    this.ws.send(`<close xmlns='${NS_FRAMING}'/>`);
    this.ws.close(1000);
  }

  destroy(): void {
    this.ws.terminate();
  }
}

/**
 * One stream during a login or a registration: reads the socket into a {@link StanzaReader}
 * and hands out the elements one by one. A stream error, a stream end, a closed socket or
 * the timeout fails whatever waits.
 */
class Conn {
  socket: BenchSocket;
  reader = new StanzaReader();
  private waiter: { resolve: (el: string) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private rejectFailed: (e: Error) => void = () => {};
  /** Rejects when the stream fails. */
  readonly failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
  private timer: NodeJS.Timeout;
  private readonly timeoutMs: number;
  readonly onData = (d: Buffer): void => {
    this.reader.feed(d.toString('latin1'));
    this.pump();
  };

  private readonly onError = (e: Error): void => this.fail(new Error(`socket: ${e.message}`));
  private readonly onClose = (): void => this.fail(new Error('connection closed by the server'));

  constructor(socket: BenchSocket, timeoutMs: number) {
    this.failed.catch(() => {});
    this.socket = socket;
    this.attach(socket);
    this.timeoutMs = timeoutMs;
    this.timer = this.arm();
  }

  /** (Re)starts the time limit: the stream fails when what it waits for has not come by then. */
  arm(): NodeJS.Timeout {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fail(new Error(`no answer within ${this.timeoutMs / 1000} s`)), this.timeoutMs);
    return this.timer;
  }

  /** Reads `socket` (the TCP socket, then the TLS socket over it). */
  attach(socket: BenchSocket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  detach(socket: BenchSocket): void {
    socket.removeListener('data', this.onData);
    socket.removeListener('error', this.onError);
    socket.removeListener('close', this.onClose);
  }

  fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.rejectFailed(e);
    const w = this.waiter;
    this.waiter = null;
    w?.reject(e);
  }

  private pump(): void {
    const w = this.waiter;
    if (!w) return;
    const el = this.reader.next();
    if (el === null) return;
    this.waiter = null;
    if (el.startsWith('</')) {
      this.fail(new Error(`the server ended the stream: ${el}`));
      return;
    }
    if (localName(el) === 'error' && el.startsWith('<stream:')) {
      this.fail(new Error(`stream error ${describeError(el)}`));
      return;
    }
    w.resolve(el);
  }

  /** The next top-level element. */
  next(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.pump();
    });
  }

  /** The next element named `name` (local name); others that a server may send first (presence, message) are skipped. */
  async expect(name: string): Promise<string> {
    for (;;) {
      const el = await this.next();
      const n = localName(el);
      if (n === name) return el;
      if (n === 'failure') throw new Error(`SASL failure ${describeError(el)}`);
      if (n === 'presence' || n === 'message' || n === 'open' || n === 'iq') continue;
      throw new Error(`expected <${name}>, got ${el.slice(0, 400)}`);
    }
  }

  /** The answer to the iq with this id (skipping anything else); throws on an error answer. */
  async iq(id: string, what: string): Promise<string> {
    for (;;) {
      const el = await this.next();
      if (!el.startsWith('<iq') || attr(el, 'id') !== id) {
        if (localName(el) === 'features' || localName(el) === 'failure') throw new Error(`expected the ${what} answer, got ${el.slice(0, 400)}`);
        continue;
      }
      if (attr(el, 'type') !== 'result') throw new Error(`${what}: ${describeError(el)}`);
      return el;
    }
  }

  /** Stops reading: the session's socket goes to its scenario. */
  release(): string {
    clearTimeout(this.timer);
    this.detach(this.socket);
    return this.reader.rest();
  }

  destroy(): void {
    clearTimeout(this.timer);
    this.socket.destroy();
  }
}

const header = (domain: string): string =>
  `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='${NS_STREAM}' version='1.0'>`;
const wsOpen = (domain: string): string => `<open xmlns='${NS_FRAMING}' to='${domain}' version='1.0'/>`;

/**
 * A new stream, up to the features of the (encrypted, unless `tls` is false) stream before
 * authentication: connect, header, [STARTTLS, TLS handshake, header]. WebSocket: `<open/>`.
 */
async function openStream(tlsWanted: boolean): Promise<{ conn: Conn; features: string; restart: () => void }> {
  const c = config();
  if (c.transport !== 'tcp') {
    const scheme = c.transport;
    const port = c.port;
    const ws = new WebSocket(`${scheme}://${c.host}:${port}/xmpp-websocket`, ['xmpp'], { perMessageDeflate: false, rejectUnauthorized: false });
    const sock = new WsSocket(ws);
    const conn = new Conn(sock, LOGIN_TIMEOUT_MS);
    try {
      await Promise.race([new Promise<void>((resolve) => ws.once('open', () => resolve())), conn.failed]);
      const restart = (): void => void sock.write(wsOpen(c.domain));
      restart();
      return { conn, features: await conn.expect('features'), restart };
    } catch (e) {
      conn.destroy();
      throw e;
    }
  }
  const raw = net.connect({ host: c.host, port: c.port });
  raw.setNoDelay(true);
  const conn = new Conn(raw, LOGIN_TIMEOUT_MS);
  try {
    await Promise.race([new Promise<void>((resolve) => raw.once('connect', () => resolve())), conn.failed]);
    raw.write(header(c.domain));
    let features = await conn.expect('features');
    if (tlsWanted) {
      if (!features.includes('<starttls')) throw new Error(`no STARTTLS offered: ${features.slice(0, 400)}`);
      raw.write(`<starttls xmlns='${NS_TLS}'/>`);
      await conn.expect('proceed');
      // The TLS handshake on the same socket; the plain stream's reader is done.
      conn.detach(raw);
      conn.reader = new StanzaReader();
      const secure = tls.connect({ socket: raw, secureContext: clientContext(), rejectUnauthorized: false, servername: c.domain });
      conn.attach(secure);
      await Promise.race([new Promise<void>((resolve) => secure.once('secureConnect', () => resolve())), conn.failed]);
      secure.write(header(c.domain));
      features = await conn.expect('features');
    }
    const sock = conn.socket as net.Socket;
    return { conn, features, restart: () => void sock.write(header(c.domain)) };
  } catch (e) {
    conn.destroy();
    throw e;
  }
}

/** Whether a `<stream:features>` offers SASL mechanism `m`. */
function offers(features: string, m: string): boolean {
  return features.includes(`>${m}<`);
}

/**
 * One whole login on a new connection (see the file comment). Resolves with the session,
 * rejects with the first failure (stream error, SASL failure, error answer, close, timeout).
 */
export async function login(user: string, resource: string): Promise<Bound> {
  const c = config();
  let conn: Conn | null = null;
  try {
    const s = await openStream(c.transport === 'tcp' && c.tls);
    conn = s.conn;
    let features = s.features;
    if (!features.includes(NS_SASL)) {
      throw new Error(`no SASL mechanisms offered${c.tls ? '' : ' on a plain stream (does the server require STARTTLS?)'}: ${features.slice(0, 400)}`);
    }
    if (!offers(features, c.mechanism)) throw new Error(`${c.mechanism} not offered: ${features.slice(0, 400)}`);
    const scram = new ScramClient(c.mechanism, user, c.password);
    conn.socket.write(`<auth xmlns='${NS_SASL}' mechanism='${c.mechanism}'>${scram.first()}</auth>`);
    const challenge = await conn.expect('challenge');
    conn.socket.write(`<response xmlns='${NS_SASL}'>${await scram.final(inner(challenge, 'challenge'))}</response>`);
    let success = await conn.next();
    if (localName(success) === 'challenge') {
      // Some servers send server-final-message as a challenge and an empty <success/> after it (RFC 6120 §6.3.10).
      scram.verify(inner(success, 'challenge'));
      conn.socket.write(`<response xmlns='${NS_SASL}'/>`);
      success = await conn.expect('success');
    } else if (localName(success) !== 'success') {
      throw new Error(localName(success) === 'failure' ? `SASL failure ${describeError(success)}` : `expected <success>, got ${success.slice(0, 400)}`);
    } else {
      scram.verify(inner(success, 'success'));
    }
    // RFC 6120 §6.4.6: restart the stream.
    s.restart();
    features = await conn.expect('features');
    if (!features.includes(NS_BIND)) throw new Error(`no bind feature: ${features.slice(0, 400)}`);
    const send = (...stanzas: string[]): void => {
      if (c.transport === 'tcp') conn!.socket.write(stanzas.join(''));
      else for (const st of stanzas) conn!.socket.write(st);
    };
    send(`<iq type='set' id='b'><bind xmlns='${NS_BIND}'><resource>${resource}</resource></bind></iq>`);
    const jid = inner(await conn.iq('b', 'bind'), 'jid');
    if (jid === '') throw new Error('bind: no JID in the result');
    // RFC 3921 session establishment, only where a server still requires it (RFC 6121 dropped it).
    const session = /<session\b[^>]*urn:ietf:params:xml:ns:xmpp-session[^>]*?(\/>|>([\s\S]*?)<\/session>)/.exec(features);
    if (session && !(session[2] ?? '').includes('<optional')) {
      send(`<iq type='set' id='s'><session xmlns='${NS_SESSION}'/></iq>`);
      await conn.iq('s', 'session');
    }
    send(`<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>`);
    await conn.iq('r', 'roster get');
    send('<presence/>', `<iq type='get' id='p' to='${c.domain}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await conn.iq('p', 'ping');
    const rest = conn.release();
    return { socket: conn.socket, jid, rest };
  } catch (e) {
    conn?.destroy();
    throw new Error(`${user}/${resource}: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------
// Many logins, closing
// ---------------------------------------------------------------------------

/**
 * Runs `count` logins with `concurrency` in flight: login i is account `user(i)`, resource
 * `<prefix><i>`. Returns the sessions (by i), per-login latencies (ms, in completion order)
 * and the errors. After the first failure no new login starts (a broken setup fails them all).
 */
export async function runLogins(
  count: number,
  concurrency: number,
  user: (i: number) => string,
  prefix: string,
  progress?: (done: number, latencies: Float64Array, errors: number) => void,
  from = 0,
): Promise<{ sessions: Bound[]; latencies: Float64Array; errors: string[] }> {
  const sessions: Bound[] = [];
  const latencies = new Float64Array(count);
  const errors: string[] = [];
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      try {
        const b = await login(user(from + i), `${prefix}${from + i}`);
        latencies[done++] = performance.now() - t0;
        sessions[i] = b;
        b.socket.on('error', () => {});
      } catch (e) {
        errors.push((e as Error).message);
        next = count;
      }
      progress?.(done, latencies, errors.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { sessions: sessions.filter((s) => s !== undefined), latencies: latencies.subarray(0, done), errors };
}

/**
 * Closes sessions politely (`</stream:stream>`) and waits until the server has closed each
 * of them (at most `ms`; the rest are destroyed).
 */
export async function closeAll(sessions: Bound[], ms = 10_000): Promise<void> {
  const closed = sessions.map(
    (s) =>
      new Promise<void>((resolve) => {
        s.socket.removeAllListeners('data');
        s.socket.removeAllListeners('close');
        s.socket.on('error', () => {});
        // Read (and drop) whatever still comes, so the server can finish writing and close.
        s.socket.on('data', () => {});
        s.socket.once('close', () => resolve());
        s.socket.end('</stream:stream>');
        setTimeout(() => {
          s.socket.destroy();
          resolve();
        }, ms).unref();
      }),
  );
  await Promise.all(closed);
}

// ---------------------------------------------------------------------------
// In-band registration (XEP-0077)
// ---------------------------------------------------------------------------

/**
 * Creates accounts in-band (XEP-0077 §3.1) over TLS streams, `concurrency` streams at a
 * time, several registrations one after the other on each stream (a new stream when a
 * server closes one). A `conflict` error means the account exists: fine (its password is
 * assumed to be the run's). Any other error fails with the server's answer.
 */
export async function registerAccounts(
  names: string[],
  password: string,
  concurrency = 8,
  progress?: (done: number) => void,
): Promise<{ created: number; existed: number }> {
  names = [...names];
  let next = 0;
  let created = 0;
  let existed = 0;
  let done = 0;
  const worker = async (w: number): Promise<void> => {
    let conn: Conn | null = null;
    let retried = -1;
    while (next < names.length) {
      const i = next++;
      const name = names[i]!;
      try {
        conn ??= (await openStream(config().transport === 'tcp')).conn;
        conn.arm();
        const id = `reg${w}-${i}`;
        conn.socket.write(
          `<iq type='set' id='${id}'><query xmlns='${NS_REGISTER}'><username>${escapeXml(name)}</username><password>${escapeXml(password)}</password></query></iq>`,
        );
        const answer = await awaitAnswer(conn, id);
        if (attr(answer, 'type') === 'result') created++;
        else if (answer.includes('<conflict')) existed++;
        else throw new Error(`registering '${name}': ${describeError(answer)}`);
        done++;
        progress?.(done);
      } catch (e) {
        conn?.destroy();
        conn = null;
        // A stream the server closed (some close after a registration): once more on a new one.
        if (retried !== i && /closed|ended the stream/.test((e as Error).message)) {
          retried = i;
          names.push(name);
          continue;
        }
        next = names.length;
        throw new Error(`registering '${name}': ${(e as Error).message.replace(/^registering '[^']*': /, '')}`);
      }
    }
    if (conn) {
      conn.release();
      conn.socket.end('</stream:stream>');
      conn.socket.on('error', () => {});
      setTimeout(() => conn?.socket.destroy(), 1000).unref();
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(concurrency, names.length) }, (_, w) => worker(w)));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return { created, existed };
}

/** The iq answer with this id, result or error. */
async function awaitAnswer(conn: Conn, id: string): Promise<string> {
  for (;;) {
    const el = await conn.next();
    if (el.startsWith('<iq') && attr(el, 'id') === id) return el;
  }
}
