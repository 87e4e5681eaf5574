import type { StreamError, XmlStreamHandler, XmlStreamLimits } from '@parley/xmpp';

/** What a client stream receives from its transport: the parsed stream events, and a sign of life. */
export interface StreamReceiver extends XmlStreamHandler {
  /** Any input arrived (a stanza, a whitespace keepalive, a WebSocket frame, a BOSH request). */
  activity(): void;
  /** The connection (or BOSH session) is gone, whoever closed it; called once. */
  transportClosed(): void;
}

/** The attributes of the server's stream header (RFC 6120 §4.7) or `<open/>` (RFC 7395 §3.3.2). */
export interface StreamOpen {
  from: string;
  id: string;
  /** The client's address, when it gave a valid `from` (RFC 6120 §4.7.2). */
  to?: string;
}

/**
 * A carrier for one XMPP client stream: TCP (RFC 6120), WebSocket (RFC 7395) or a BOSH
 * session (XEP-0124/0206). The transport owns the framing — how the stream is opened,
 * closed and parsed — so the stream logic above it (c2s) is the same for all three
 * (ARCHITECTURE §1: transports know nothing of stanzas).
 */
export interface StreamTransport {
  /** The peer's IP address. */
  readonly remoteAddress: string;
  /** `true` once the bytes are protected: TLS (direct, STARTTLS, HTTPS), or a trusted loopback hop. */
  readonly secure: boolean;
  /** `true` when {@link startTls} can be used (plain TCP with a certificate configured). */
  readonly canStartTls: boolean;
  /**
   * `true` when each top-level element is a document of its own and must declare its
   * namespaces (RFC 7395 §3.3.3, XEP-0206 §5): stanzas carry `xmlns='jabber:client'`,
   * stream-level elements declare the `stream` prefix.
   */
  readonly framed: boolean;
  /** Sets the receiver of the parsed input and of the connection's end (called once by the stream). */
  attach(receiver: StreamReceiver, limits: XmlStreamLimits): void;
  /** Discards the input state: the next input starts a new stream (RFC 6120 §4.3.3 restart after STARTTLS/SASL). */
  restart(): void;
  /** Sends the server's stream header (`<stream:stream>`, `<open/>`, or the BOSH session attributes). */
  openStream(open: StreamOpen): void;
  /** Queues serialized elements for the peer; writes in one event-loop turn are sent together. */
  write(data: string): void;
  /** Bytes queued but not yet delivered, for backpressure checks. */
  readonly pendingBytes: number;
  /** Upgrades the connection to TLS as the server (RFC 6120 §5.4.3.3); resolves once the handshake completes. */
  startTls(): Promise<void>;
  /** The `tls-exporter` channel-binding data (RFC 9266), or `null` when not on TLS. */
  channelBinding(): Buffer | null;
  /**
   * Whether the connection is TLS, so that {@link channelBinding} has data to give: decides
   * whether -PLUS mechanisms and XEP-0440 are advertised without exporting keying material
   * (an exporter call per connection that only a -PLUS exchange needs).
   */
  readonly channelBindingAvailable: boolean;
  /**
   * Ends the stream: the error when given (RFC 6120 §4.9), the stream's end
   * (`</stream:stream>`, `<close/>`, or a BOSH `terminate` body), then the connection.
   */
  closeStream(error?: StreamError): void;
  /** Flushes what is queued, then closes the connection without ending the stream. */
  close(): void;
}
