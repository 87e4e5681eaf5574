import net from 'node:net';
import tls from 'node:tls';
import { NS, XmlStreamParser, buildPlain, xml, type StreamHeader, type XmlElement } from '@parley/xmpp';

/**
 * A deliberately low-level XMPP client for tests of stream behaviour: it sends
 * exactly the bytes it is told to and records every element received. It can
 * also do the whole login (STARTTLS, SASL PLAIN, bind) so a test can misbehave
 * after authentication. Not an interop proof: independent clients do that.
 */
export class RawClient {
  socket: net.Socket | tls.TLSSocket;
  /** Everything received, as text. */
  raw = '';
  /** First-level elements received since the last stream header. */
  elements: XmlElement[] = [];
  headers = 0;
  /** The last stream header received. */
  header: StreamHeader | null = null;
  ended = false;
  /** When set, iq pings (XEP-0199) from the server are answered automatically. */
  answerPings = false;
  /** Server pings received (answered or not). */
  pingsReceived = 0;
  closed: Promise<void>;
  private parser: XmlStreamParser;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.parser = this.newParser();
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    this.listen(socket);
  }

  private newParser(): XmlStreamParser {
    return new XmlStreamParser(
      {
        streamStart: (h) => {
          this.headers++;
          this.header = h;
          this.notify();
        },
        stanza: (el) => {
          if (el.name === 'iq' && el.attrs.type === 'get' && el.getChild('ping', NS.PING)) {
            this.pingsReceived++;
            if (this.answerPings) {
              this.send(xml('iq', { type: 'result', id: el.attrs.id, to: el.attrs.from }).toString());
              this.notify();
              return;
            }
          }
          this.elements.push(el);
          this.notify();
        },
        streamEnd: () => {
          this.ended = true;
          this.notify();
        },
        streamError: () => this.notify(),
      },
      { maxStanzaSize: 10_000_000 },
    );
  }

  private listen(s: net.Socket): void {
    s.on('data', (d: Buffer) => {
      this.raw += d.toString('utf8');
      this.parser.feed(d);
    });
    s.on('close', () => this.notify());
    s.on('error', () => {});
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Connects to 127.0.0.1:port (direct TLS when `tls`). */
  static async connect(port: number, opts: { tls?: boolean } = {}): Promise<RawClient> {
    const socket = opts.tls
      ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['xmpp-client'] })
      : net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends a stream header for `to` (default localhost). */
  open(to = 'localhost', extra = ''): void {
    this.send(`<?xml version='1.0'?><stream:stream to='${to}' xmlns='jabber:client' xmlns:stream='${NS.STREAM}' version='1.0'${extra}>`);
  }

  /** Waits until `pred` holds (checked on every received element / close), or fails after `ms`. */
  async waitFor<T>(pred: () => T | undefined | false, ms = 5000, what = 'condition'): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}; received: ${this.raw.slice(-2000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for the next received element matching name (and namespace), removing it from the queue. */
  async next(name: string, ns?: string, ms = 5000): Promise<XmlElement> {
    return this.waitFor(() => {
      const i = this.elements.findIndex((e) => e.name === name && (ns === undefined || e.ns === ns));
      if (i < 0) return undefined;
      return this.elements.splice(i, 1)[0];
    }, ms, `<${name}/>`);
  }

  /** Waits for a stream error; returns its condition. */
  async streamError(ms = 5000): Promise<string> {
    const e = await this.next('error', NS.STREAM, ms);
    const cond = e.getChildren().find((c) => c.ns === NS.STREAMS && c.name !== 'text');
    return cond?.name ?? '';
  }

  /** STARTTLS on the current stream (after features), then restart. */
  async startTls(): Promise<void> {
    await this.next('features', NS.STREAM);
    this.send(`<starttls xmlns='${NS.TLS}'/>`);
    await this.next('proceed', NS.TLS);
    const raw = this.socket;
    raw.removeAllListeners('data');
    const secure = tls.connect({ socket: raw, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.parser = this.newParser();
    this.elements = [];
    this.listen(secure);
  }

  /**
   * Header, STARTTLS, SASL PLAIN, restart: stops before resource binding.
   * Returns the client and the features of the restarted (authenticated) stream.
   */
  static async authenticate(port: number, user: string, password: string): Promise<{ client: RawClient; features: XmlElement }> {
    const c = await RawClient.connect(port);
    c.open();
    await c.startTls();
    c.open();
    await c.next('features', NS.STREAM);
    c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${buildPlain(user, password).toString('base64')}</auth>`);
    await c.next('success', NS.SASL);
    c.restart();
    c.open();
    const features = await c.next('features', NS.STREAM);
    return { client: c, features };
  }

  /** Sends a bind request (RFC 6120 §7) for `resource` (none: the server picks one); returns the iq reply. */
  async bind(resource?: string, id = 'bind1'): Promise<XmlElement> {
    this.send(
      xml('iq', { type: 'set', id }, xml('bind', { xmlns: NS.BIND }, resource === undefined ? null : xml('resource', null, resource))).toString(),
    );
    return this.nextIq(id);
  }

  /** Full login: header, STARTTLS, SASL PLAIN, restart, bind. Returns the bound JID. */
  static async login(port: number, user: string, password: string, resource = 'raw'): Promise<{ client: RawClient; jid: string }> {
    const { client: c } = await RawClient.authenticate(port, user, password);
    const res = await c.bind(resource);
    const jid = res.getChild('bind', NS.BIND)?.getChildText('jid');
    if (!jid) throw new Error(`bind failed: ${res.toString()}`);
    return { client: c, jid };
  }

  /** Waits for the iq with this id (removing it from the queue). */
  async nextIq(id: string, ms = 5000): Promise<XmlElement> {
    return this.nextWhere((e) => e.name === 'iq' && e.attrs.id === id, ms, `<iq id='${id}'/>`);
  }

  /** Sends an iq (as text) and waits for the reply with the same id. */
  async request(iq: string | XmlElement, ms = 5000): Promise<XmlElement> {
    const el = typeof iq === 'string' ? null : iq;
    const id = el ? el.attrs.id : /\bid=['"]([^'"]*)['"]/.exec(iq as string)?.[1];
    if (id === undefined) throw new Error('request: the iq needs an id');
    this.send(typeof iq === 'string' ? iq : iq.toString());
    return this.nextIq(id, ms);
  }

  /** Waits for the next received element matching `pred`, removing it from the queue. */
  async nextWhere(pred: (e: XmlElement) => boolean, ms = 5000, what = 'element'): Promise<XmlElement> {
    return this.waitFor(() => {
      const i = this.elements.findIndex(pred);
      if (i < 0) return undefined;
      return this.elements.splice(i, 1)[0];
    }, ms, what);
  }

  /** `true` once the TCP connection is closed. */
  get isClosed(): boolean {
    return this.socket.destroyed || this.socket.closed;
  }

  /** Waits until the connection is closed (by the server), or fails after `ms`. */
  async waitClosed(ms = 5000): Promise<void> {
    await this.waitFor(() => this.isClosed, ms, 'the connection to close');
  }

  /** Expects the server to restart the stream (after SASL success). */
  restart(): void {
    this.parser = this.newParser();
    this.elements = [];
  }

  close(): void {
    this.socket.destroy();
  }
}
