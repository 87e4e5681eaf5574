/**
 * A small, strict XMPP client for the peers' checks and for creating the benchmark's
 * accounts: raw sockets, the server's output split into top-level elements by counting tags
 * (enough for the replies of these three servers), STARTTLS, in-band registration
 * (XEP-0077) and a SCRAM-SHA-1 login. Not fast, not general: the load generator
 * (bench/load.ts) is the fast one.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ScramClient } from '@parley/xmpp';

const HOST = '127.0.0.1';

/**
 * A client connection that splits the server's output into top-level elements (children
 * of `<stream:stream>`) by counting tags: enough for the replies of these servers (no
 * CDATA, no `>` inside attribute values in what we read).
 */
export class Conn {
  private socket: net.Socket;
  private raw: net.Socket;
  private buf = '';
  private depth = 0;
  private current = '';
  private queue: string[] = [];
  private waiters: Array<() => void> = [];
  private closed: Error | null = null;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.raw = socket;
    this.listen(socket);
  }

  static connect(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: HOST, port });
      s.setNoDelay(true);
      s.once('connect', () => resolve(new Conn(s)));
      s.once('error', reject);
    });
  }

  private listen(s: net.Socket): void {
    s.on('data', (d: Buffer) => this.feed(d.toString('utf8')));
    s.on('error', (e) => this.fail(e));
    s.on('close', () => this.fail(new Error('connection closed')));
  }

  private fail(e: Error): void {
    this.closed ??= e;
    for (const w of this.waiters.splice(0)) w();
  }

  private feed(text: string): void {
    this.buf += text;
    for (;;) {
      const lt = this.buf.indexOf('<');
      if (lt < 0) {
        if (this.depth > 0) this.current += this.buf;
        this.buf = '';
        break;
      }
      const gt = this.buf.indexOf('>', lt);
      if (gt < 0) break;
      if (this.depth > 0) this.current += this.buf.slice(0, lt);
      const tag = this.buf.slice(lt, gt + 1);
      this.buf = this.buf.slice(gt + 1);
      if (tag.startsWith('<?')) continue;
      if (/^<(stream:)?stream[\s>]/.test(tag)) continue; // stream header
      if (/^<\/(stream:)?stream>/.test(tag)) {
        this.fail(new Error('stream closed by the server'));
        continue;
      }
      if (tag.startsWith('</')) {
        this.depth--;
        this.current += tag;
      } else if (tag.endsWith('/>')) {
        this.current += tag;
      } else {
        this.depth++;
        this.current += tag;
      }
      if (this.depth === 0) {
        this.queue.push(this.current);
        this.current = '';
        for (const w of this.waiters.splice(0)) w();
      }
    }
  }

  /** The next element matching `re` (others before it are dropped, unless `keep`), within `ms`. */
  async expect(re: RegExp, what: string, ms = 10_000, keep = false): Promise<string> {
    const deadline = Date.now() + ms;
    const seen: string[] = [];
    for (;;) {
      const i = this.queue.findIndex((el) => re.test(el));
      if (i >= 0) {
        const el = this.queue[i]!;
        if (keep) this.queue.splice(i, 1);
        else this.queue.splice(0, i + 1);
        return el;
      }
      if (!keep) seen.push(...this.queue.splice(0));
      const error = this.queue.concat(seen).find((el) => /^<(stream:error|failure)[\s>]/.test(el));
      if (error) throw new Error(`${what}: got ${error}`);
      if (this.closed) throw new Error(`${what}: ${this.closed.message} (received: ${seen.join(' ').slice(0, 800)})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: timed out (received: ${seen.join(' ').slice(0, 800)})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  send(s: string): void {
    this.socket.write(s);
  }

  header(domain: string): void {
    this.send(`<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`);
  }

  async starttls(domain: string): Promise<void> {
    this.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
    await this.expect(/^<proceed/, 'STARTTLS');
    this.raw.removeAllListeners('data');
    this.raw.removeAllListeners('close');
    this.raw.removeAllListeners('error');
    const secure = tls.connect({ socket: this.raw, rejectUnauthorized: false, servername: domain });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.buf = '';
    this.listen(secure);
  }

  /** TLS version and cipher once STARTTLS is done, or 'plain'. */
  protocol(): string {
    const s = this.socket as tls.TLSSocket;
    return typeof s.getProtocol === 'function' ? `${s.getProtocol()} ${s.getCipher()?.name ?? ''}` : 'plain';
  }

  close(): void {
    this.socket.end('</stream:stream>');
    setTimeout(() => this.socket.destroy(), 500).unref();
  }
}

export const inner = (el: string): string => el.slice(el.indexOf('>') + 1, el.lastIndexOf('</'));
export const attr = (el: string, name: string): string | null => new RegExp(`\\s${name}=(['"])(.*?)\\1`).exec(el)?.[2] ?? null;

export interface Options {
  port: number;
  domain: string;
  tls: boolean;
}

/** Opens a stream, with STARTTLS when `o.tls`; returns the connection and the features after TLS. */
export async function open(o: Options): Promise<{ c: Conn; features: string }> {
  const c = await Conn.connect(o.port);
  c.header(o.domain);
  let features = await c.expect(/^<(stream:)?features/, 'stream features');
  if (o.tls) {
    if (!/<starttls/.test(features)) throw new Error(`no STARTTLS offered: ${features}`);
    await c.starttls(o.domain);
    c.header(o.domain);
    features = await c.expect(/^<(stream:)?features/, 'stream features after STARTTLS');
  }
  return { c, features };
}

/** In-band registration (XEP-0077 §3.1): 'ok' or the error condition. */
export async function register(o: Options, user: string, password: string): Promise<string> {
  const { c } = await open({ ...o, tls: true });
  c.send(`<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>${user}</username><password>${password}</password></query></iq>`);
  const r = await c.expect(/^<iq[^>]*id=['"]reg1['"]/, 'registration');
  c.close();
  if (attr(r, 'type') === 'result') return 'ok';
  return /<conflict/.test(r) ? 'conflict' : `error: ${r}`;
}

/** Login: (STARTTLS) → SCRAM-SHA-1 → restart → bind. */
export async function login(o: Options, user: string, password: string, resource: string): Promise<{ c: Conn; jid: string; mechanisms: string[]; protocol: string }> {
  const { c, features } = await open(o);
  const mechanisms = [...features.matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((m) => m[1]!);
  if (!mechanisms.includes('SCRAM-SHA-1')) throw new Error(`SCRAM-SHA-1 not offered: ${features}`);
  const scram = new ScramClient({ hash: 'SHA-1', username: user, password });
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>${scram.first().toString('base64')}</auth>`);
  const challenge = await c.expect(/^<challenge/, 'SASL challenge');
  const final = await scram.final(Buffer.from(inner(challenge), 'base64'));
  c.send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${final.toString('base64')}</response>`);
  const success = await c.expect(/^<success/, 'SASL success');
  scram.verifyServerFinal(Buffer.from(inner(success), 'base64'));
  c.header(o.domain);
  const f2 = await c.expect(/^<(stream:)?features/, 'features after SASL');
  if (!/<bind/.test(f2)) throw new Error(`no bind feature: ${f2}`);
  c.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
  const b = await c.expect(/^<iq[^>]*id=['"]bind1['"]/, 'bind');
  const jid = /<jid>([^<]+)<\/jid>/.exec(b)?.[1];
  if (!jid) throw new Error(`bind failed: ${b}`);
  // RFC 3921 session establishment, for servers that still announce it as required.
  if (/<session[^>]*xmlns=['"]urn:ietf:params:xml:ns:xmpp-session['"][^>]*>\s*<required/.test(f2)) {
    c.send(`<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
    await c.expect(/^<iq[^>]*id=['"]sess1['"]/, 'session');
  }
  return { c, jid, mechanisms, protocol: c.protocol() };
}

/**
 * Creates accounts in-band (XEP-0077) over STARTTLS, `concurrency` streams at a time and
 * at most `perStream` registrations per stream (ejabberd closes a stream that has not
 * authenticated within 30 s, Parley too). An existing account (`conflict`) is fine.
 */
export async function registerAccounts(
  o: Options,
  names: string[],
  password: string,
  opts: { concurrency?: number; perStream?: number; progress?: (done: number) => void } = {},
): Promise<{ created: number; existed: number }> {
  const perStream = opts.perStream ?? 50;
  let next = 0;
  let created = 0;
  let existed = 0;
  const worker = async (w: number): Promise<void> => {
    while (next < names.length) {
      const { c } = await open({ ...o, tls: true });
      try {
        for (let k = 0; k < perStream && next < names.length; k++) {
          const i = next++;
          const id = `reg${w}-${i}`;
          c.send(`<iq type='set' id='${id}'><query xmlns='jabber:iq:register'><username>${names[i]}</username><password>${password}</password></query></iq>`);
          const r = await c.expect(new RegExp(`^<iq[^>]*id=['"]${id}['"]`), `registering ${names[i]}`);
          if (attr(r, 'type') === 'result') created++;
          else if (/<conflict/.test(r)) existed++;
          else throw new Error(`registering ${names[i]}: ${r}`);
          const done = created + existed;
          if (done % 1000 === 0) opts.progress?.(done);
        }
      } finally {
        c.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 8, names.length) }, (_, w) => worker(w)));
  return { created, existed };
}
