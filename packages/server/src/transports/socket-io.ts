import type tls from 'node:tls';

/** What {@link TurnCork} needs of a socket. */
interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Write coalescing for a transport: the first write of an event-loop turn corks the socket
 * and the next tick uncorks it, so everything written in one turn (a fan-out, a burst of
 * stanzas, several WebSocket frames) leaves in one socket write.
 */
export class TurnCork {
  private held: Corkable | null = null;

  /** Corks `socket` for the rest of this turn (once per turn). */
  hold(socket: Corkable): void {
    if (this.held) return;
    this.held = socket;
    socket.cork();
    process.nextTick(() => this.release());
  }

  /** Sends what is held now (before a TLS upgrade or a close). */
  release(): void {
    const s = this.held;
    if (!s) return;
    this.held = null;
    s.uncork();
  }
}

/** The `tls-exporter` channel-binding data of a TLS connection (RFC 9266 §2), or `null` when it cannot be exported. */
export function tlsExporter(socket: tls.TLSSocket): Buffer | null {
  try {
    return socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  } catch {
    return null;
  }
}
