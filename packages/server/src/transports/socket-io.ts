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

/**
 * Output coalescing for a byte-stream transport: the strings written in one event-loop turn
 * are joined and leave in one `sink()` call (one Buffer, and over TLS as few records as the
 * size allows) at the end of the turn. One `process.nextTick` flushes every buffer that was
 * written to in the turn, however many connections a fan-out touched. A base class rather
 * than an object the transport holds: an idle connection keeps no buffer object and no
 * closure for its sink.
 */
export abstract class TurnBuffer {
  private out = '';
  /** While set, the end of the turn does not flush: what is queued waits for {@link releaseTurn}. */
  private holding = false;

  /** Writes the joined output (called at most once per turn, never with ''). */
  protected abstract sink(data: string): void;

  /** Characters waiting for the end of the turn. */
  protected get queuedLength(): number {
    return this.out.length;
  }

  /** Queues `data` for this turn's write. */
  protected queue(data: string): void {
    if (this.out === '') scheduleFlush(this);
    this.out += data;
  }

  /** Writes what is queued now (at the end of the turn, or early: before a TLS upgrade or a close); nothing while holding. */
  flushTurn(): void {
    const data = this.out;
    if (data === '' || this.holding) return;
    this.out = '';
    this.sink(data);
  }

  /** Keeps this turn's output (and any after it) queued until the next `setImmediate`, then flushes it. */
  protected holdUntilImmediate(): void {
    this.holding = true;
    setImmediate(() => this.releaseTurn());
  }

  /** Stops holding and flushes what was queued (early: before a close). */
  protected releaseTurn(): void {
    this.holding = false;
    this.flushTurn();
  }
}

/**
 * The buffers written to in this turn: the first `flushCount` slots. The array keeps its
 * capacity from turn to turn (emptying it with `length = 0` gave its storage back, and every
 * turn grew a new one: 2 % of what a login allocated); flushed slots are cleared so that a
 * closed connection is not kept.
 */
const toFlush: (TurnBuffer | null)[] = [];
let flushCount = 0;
let flushQueued = false;

function scheduleFlush(b: TurnBuffer): void {
  toFlush[flushCount++] = b;
  if (!flushQueued) {
    flushQueued = true;
    process.nextTick(flushAll);
  }
}

function flushAll(): void {
  flushQueued = false;
  // A buffer flushed early (release before STARTTLS) and written to again is listed twice: the second flush is a no-op.
  // A flush that queues output elsewhere appends to the list, and this loop reaches it.
  for (let i = 0; i < flushCount; i++) {
    const b = toFlush[i]!;
    toFlush[i] = null;
    b.flushTurn();
  }
  flushCount = 0;
}

/** The `tls-exporter` channel-binding data of a TLS connection (RFC 9266 §2), or `null` when it cannot be exported. */
export function tlsExporter(socket: tls.TLSSocket): Buffer | null {
  try {
    return socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  } catch {
    return null;
  }
}
