import tls from 'node:tls';
import type { WebSocket } from 'ws';
import { FramedStreamParser, NS, StreamError, escapeAttr, type XmlStreamLimits } from '@parley/xmpp';
import type { StreamOpen, StreamReceiver, StreamTransport } from './transport.ts';
import { TurnCork, tlsExporter } from './socket-io.ts';

/** RFC 7395 §3.3.2: the `<open/>` attributes after `from`, `id` and `to`. */
const OPEN_TAIL = `version='1.0' xml:lang='en'`;

/**
 * One XMPP stream over a WebSocket connection (RFC 7395): the `xmpp` subprotocol, one
 * element per message, `<open/>`/`<close/>` framing (§3.3), a restart after SASL being a new
 * `<open/>` from the client (§3.7, no parser reset). Liveness (§3.8) is checked with WebSocket
 * pings by the HTTP service ({@link WebSocketTransport.checkAlive}).
 */
export class WebSocketTransport implements StreamTransport {
  readonly framed = true;
  readonly canStartTls = false;
  readonly remoteAddress: string;
  readonly secure: boolean;
  private readonly ws: WebSocket;
  private readonly tlsSocket: tls.TLSSocket | null;
  /** The connection under the WebSocket, corked while one event-loop turn's messages are queued. */
  private readonly socket: { cork(): void; uncork(): void } | null;
  private readonly cork = new TurnCork();
  private parser: FramedStreamParser | null = null;
  private receiver: StreamReceiver | null = null;
  private closed = false;
  private alive = true;
  private cb: Buffer | null | undefined;

  /**
   * @param ws the accepted WebSocket, subprotocol `xmpp` already negotiated
   * @param remoteAddress the client's address (from a trusted proxy's X-Forwarded-For when configured)
   * @param secure whether the connection counts as encrypted (HTTPS, or a trusted loopback hop)
   */
  constructor(ws: WebSocket, remoteAddress: string, secure: boolean) {
    this.ws = ws;
    this.remoteAddress = remoteAddress.replace(/^::ffff:/, '');
    this.secure = secure;
    const raw = (ws as unknown as { _socket?: unknown })._socket;
    this.tlsSocket = raw instanceof tls.TLSSocket ? raw : null;
    this.socket = raw && typeof (raw as { cork?: unknown }).cork === 'function' ? (raw as { cork(): void; uncork(): void }) : null;
    ws.on('pong', () => {
      this.alive = true;
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      this.closed = true;
      this.receiver?.transportClosed();
    });
    ws.on('message', (data, isBinary) => {
      this.alive = true;
      const receiver = this.receiver;
      if (!receiver || !this.parser) return;
      receiver.activity();
      if (isBinary) {
        // RFC 7395 §3.2: XMPP is carried in text messages only.
        return receiver.streamError(new StreamError('bad-format', 'XMPP over WebSocket uses text messages (RFC 7395 §3.2)'));
      }
      // binaryType is 'nodebuffer' (ws's default): a Buffer, or its fragments.
      this.parser.feed(Array.isArray(data) ? Buffer.concat(data) : (data as Buffer));
    });
  }

  get pendingBytes(): number {
    return this.ws.bufferedAmount;
  }

  attach(receiver: StreamReceiver, limits: XmlStreamLimits): void {
    this.receiver = receiver;
    this.parser = new FramedStreamParser(receiver, limits);
  }

  restart(): void {}

  /** RFC 7395 §3.3.2: the server's `<open/>`. */
  openStream(open: StreamOpen): void {
    const to = open.to === undefined ? '' : ` to='${escapeAttr(open.to)}'`;
    this.write(`<open xmlns='${NS.FRAMING}' from='${escapeAttr(open.from)}' id='${escapeAttr(open.id)}'${to} ${OPEN_TAIL}/>`);
  }

  /**
   * One element per message (RFC 7395 §3.3.3). The messages of one event-loop turn leave in
   * one socket write (the connection is corked until the next tick), as on TCP.
   */
  write(data: string): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    if (this.socket) this.cork.hold(this.socket);
    this.ws.send(data);
  }

  startTls(): Promise<void> {
    return Promise.reject(new Error('STARTTLS is not used over WebSocket (RFC 7395 §3.9)'));
  }

  get channelBindingAvailable(): boolean {
    return this.tlsSocket !== null;
  }

  /** RFC 9266 `tls-exporter` of the HTTPS connection under the WebSocket, when there is one. */
  channelBinding(): Buffer | null {
    if (this.cb === undefined) this.cb = this.tlsSocket ? tlsExporter(this.tlsSocket) : null;
    return this.cb;
  }

  /** RFC 7395 §3.6: the stream error (§3.5), `<close/>`, then the WebSocket closing handshake. */
  closeStream(error?: StreamError): void {
    if (error) this.write(error.toXML(true));
    this.write(`<close xmlns='${NS.FRAMING}'/>`);
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const ws = this.ws;
    ws.close(1000);
    // Do not wait for a peer that never answers the closing handshake.
    setTimeout(() => ws.terminate(), 2000).unref();
  }

  /**
   * Keepalive round (RFC 7395 §3.8: WebSocket pings): a connection that
   * has shown no sign of life since the previous round is terminated; the others are pinged.
   */
  checkAlive(): void {
    if (this.closed) return;
    if (!this.alive) {
      this.ws.terminate();
      return;
    }
    this.alive = false;
    this.ws.ping();
  }
}
