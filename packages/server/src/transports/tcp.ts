import net from 'node:net';
import tls from 'node:tls';
import { NS, StreamError, XmlStreamParser, escapeAttr, type XmlStreamLimits } from '@parley/xmpp';
import type { StreamOpen, StreamReceiver, StreamTransport } from './transport.ts';
import { TurnBuffer, tlsExporter } from './socket-io.ts';

const STREAM_HEADER_TAIL = `xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}' version='1.0' xml:lang='en'`;

/** The transport a socket carries, for the socket event handlers below. */
const TRANSPORT = Symbol('parley.tcpTransport');
type Carrier = net.Socket & { [TRANSPORT]?: TcpTransport };

// One set of socket handlers for every connection, finding the transport through the socket
// (`this`), instead of three closures per connection.
function onSocketData(this: Carrier, chunk: Buffer): void {
  this[TRANSPORT]?.received(chunk);
}
function onSocketError(this: net.Socket): void {
  this.destroy();
}
function onSocketClose(this: Carrier): void {
  this[TRANSPORT]?.socketClosed();
}

/**
 * A TCP connection carrying one XMPP stream, optionally upgraded with STARTTLS
 * (RFC 6120 §5) or TLS from the first byte (XEP-0368 direct TLS). Writes made in
 * one event-loop turn are joined into one socket write ({@link TurnBuffer}); Nagle is off.
 */
export class TcpTransport extends TurnBuffer implements StreamTransport {
  private socket: net.Socket | tls.TLSSocket;
  private secureContext: tls.SecureContext | null;
  private parser: XmlStreamParser | null = null;
  private receiver: StreamReceiver | null = null;
  private closed = false;
  private cb: Buffer | null | undefined;
  readonly remoteAddress: string;
  readonly framed = false;
  secure: boolean;

  /**
   * @param socket an accepted socket (a TLSSocket for direct TLS)
   * @param secureContext the server's TLS context for STARTTLS; `null` disables STARTTLS
   */
  constructor(socket: net.Socket | tls.TLSSocket, secureContext: tls.SecureContext | null) {
    super();
    this.socket = socket;
    this.secureContext = secureContext;
    this.remoteAddress = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.secure = socket instanceof tls.TLSSocket;
    socket.setNoDelay(true);
    this.listen(socket);
    // Direct TLS: the server hands the socket over on 'secureConnection', when its handshake has just finished.
    if (this.secure) this.holdAfterHandshake();
  }

  /**
   * Holds this turn's output until the records the TLS handshake itself wrote have left.
   *
   * Why: Node keeps a TLS connection's encrypted output in a chain of buffers (NodeBIO) that
   * starts at 1 KB and, once something does not fit, gains a 16 KB buffer that stays for
   * the life of the connection. A TLS 1.3 server writes its session tickets when it reads the
   * client's Finished, and clients send their first stream header in the same flight: a
   * reply written in that turn lands behind the tickets, overflows the first buffer, and
   * costs every session 16 KB it never uses again (measured: 44 → 33 KB of resident memory
   * per idle TLS session, bench/lib/idle.ts). Node hands the tickets to the socket in a
   * native immediate, which runs before JS immediates; so the reply leaves in a
   * `setImmediate` of ours, into an empty buffer.
   */
  private holdAfterHandshake(): void {
    this.holdUntilImmediate();
  }

  get channelBindingAvailable(): boolean {
    return this.secure;
  }

  get canStartTls(): boolean {
    return !this.secure && this.secureContext !== null;
  }

  get pendingBytes(): number {
    return this.socket.writableLength + this.queuedLength;
  }

  attach(receiver: StreamReceiver, limits: XmlStreamLimits): void {
    this.receiver = receiver;
    this.parser = new XmlStreamParser(receiver, limits);
  }

  restart(): void {
    this.parser?.reset();
    // The channel-binding data served the SASL exchange that ends with this restart; an idle session need not keep it.
    this.cb = undefined;
  }

  private listen(socket: Carrier): void {
    socket[TRANSPORT] = this;
    socket.on('data', onSocketData);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
  }

  /** @internal Input from the socket. */
  received(chunk: Buffer): void {
    this.receiver?.activity();
    this.parser?.feed(chunk);
  }

  /** @internal The socket is closed (once). */
  socketClosed(): void {
    this.closed = true;
    this.receiver?.transportClosed();
  }

  write(data: string): void {
    if (this.closed || !this.socket.writable) return;
    this.queue(data);
  }

  /** The turn's output: one socket write. */
  protected sink(data: string): void {
    if (!this.closed && this.socket.writable) this.socket.write(data);
  }

  /** RFC 6120 §4.7: `<stream:stream>` with `jabber:client` as the content namespace. */
  openStream(open: StreamOpen): void {
    const to = open.to === undefined ? '' : ` to='${escapeAttr(open.to)}'`;
    this.write(`<?xml version='1.0'?><stream:stream from='${escapeAttr(open.from)}' id='${escapeAttr(open.id)}'${to} ${STREAM_HEADER_TAIL}>`);
  }

  /** RFC 6120 §4.4, §4.9: the error, `</stream:stream>`, then the TCP connection. */
  closeStream(error?: StreamError): void {
    if (error) this.write(error.toXML());
    this.write('</stream:stream>');
    this.close();
  }

  startTls(): Promise<void> {
    const raw = this.socket;
    if (!this.secureContext || this.secure) return Promise.reject(new Error('TLS not available'));
    // Flush <proceed/> before the handshake takes over the socket.
    this.flushTurn();
    raw.off('data', onSocketData);
    raw.off('close', onSocketClose);
    raw.off('error', onSocketError);
    (raw as Carrier)[TRANSPORT] = undefined;
    const tlsSocket = new tls.TLSSocket(raw, { isServer: true, secureContext: this.secureContext });
    this.socket = tlsSocket;
    this.secure = true;
    this.cb = undefined;
    this.listen(tlsSocket);
    return new Promise((resolve, reject) => {
      tlsSocket.once('secure', () => {
        tlsSocket.off('error', reject); // not kept for the life of the session
        this.holdAfterHandshake();
        resolve();
      });
      tlsSocket.once('error', reject);
    });
  }

  channelBinding(): Buffer | null {
    if (!this.secure) return null;
    if (this.cb === undefined) this.cb = tlsExporter(this.socket as tls.TLSSocket);
    return this.cb;
  }

  close(): void {
    if (this.closed) return;
    this.releaseTurn();
    const s = this.socket;
    this.closed = true;
    s.end();
    // Do not wait for a peer that never closes its side.
    setTimeout(() => s.destroy(), 2000).unref();
  }
}

/** A listening TCP (or direct TLS) port. */
export interface Listener {
  /** The bound addresses, e.g. `[::]:5222`. */
  addresses(): string[];
  close(): Promise<void>;
}

/**
 * Listens on `port` on each of `interfaces` (`'::'` = all, dual-stack). With
 * `tlsOptions` the port speaks TLS from the first byte (XEP-0368), announcing
 * ALPN `xmpp-client`. Resolves once every address is bound; port 0 picks a free
 * port (shared by all interfaces).
 */
export async function listenTcp(
  interfaces: string[],
  port: number,
  tlsOptions: tls.TlsOptions | null,
  onConnection: (socket: net.Socket) => void,
): Promise<Listener> {
  const servers: net.Server[] = [];
  let actualPort = port;
  for (const host of interfaces) {
    const server = tlsOptions
      ? tls.createServer({ ...tlsOptions, ALPNProtocols: ['xmpp-client'] }, onConnection)
      : net.createServer(onConnection);
    if (tlsOptions) server.on('tlsClientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: actualPort }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => {});
    actualPort = (server.address() as net.AddressInfo).port;
    servers.push(server);
  }
  return {
    addresses: () =>
      servers.map((s) => {
        const a = s.address() as net.AddressInfo;
        return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
      }),
    close: () =>
      Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined),
  };
}
