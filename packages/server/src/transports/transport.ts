/**
 * A byte carrier for one XMPP stream (TCP, TLS; later WebSocket frames, BOSH).
 * Transports know nothing of stanzas (ARCHITECTURE §1): they move text out and
 * bytes in, and can upgrade to TLS.
 */
export interface StreamTransport {
  /** The peer's IP address. */
  readonly remoteAddress: string;
  /** `true` once the bytes are TLS-protected (direct TLS, or after STARTTLS). */
  readonly secure: boolean;
  /** `true` when {@link startTls} can be used (plain TCP with a certificate configured). */
  readonly canStartTls: boolean;
  /** Queues text for the peer; writes in one event-loop turn are sent together. */
  write(data: string): void;
  /** Bytes queued but not yet written to the socket, for backpressure checks. */
  readonly pendingBytes: number;
  /** Upgrades the connection to TLS as the server (RFC 6120 §5.4.3.3); resolves once the handshake completes. */
  startTls(): Promise<void>;
  /** The `tls-exporter` channel-binding data (RFC 9266), or `null` when not on TLS. */
  channelBinding(): Buffer | null;
  /** Flushes what is queued, then closes the connection. */
  close(): void;
  /** Sets the receivers of incoming bytes and of the connection's end (called once by the stream). */
  attach(onData: (chunk: Buffer) => void, onClose: () => void): void;
}
