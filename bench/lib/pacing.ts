/** A sender that {@link paceSenders} drives: `head` is its message up to the id's sequence part. */
export interface PacedSender {
  /** 0 … senders − 1: its place in the stagger. */
  index: number;
  /** Messages sent so far (advanced here). */
  sent: number;
  /** `<message to='…' type='…' id='…` up to where the sequence number goes. */
  head: string;
  session: { socket: { write(data: string): unknown } };
}

/** A running pacer: stop it, and read how late the generator sent (ms). */
export interface Pacer {
  stop(): void;
  readonly sendLagMax: number;
}

/**
 * Sends `perSender` messages from each sender, one every `interval` ms, sender i starting
 * i/senders × `interval` after `t0` (so that together they send one every interval/senders).
 * A 1 ms ticker sends what is due, each body stamped with the time it was due — the
 * generator's own lateness counts in the latency (no coordinated omission) and is reported
 * as `sendLagMax`. Bodies are `<due time> <sender index> <seq>`; ids `head + idPrefix + seq`.
 */
export function paceSenders(senders: PacedSender[], perSender: number, interval: number, t0: number, idPrefix = ''): Pacer {
  let sendLagMax = 0;
  const offsets = senders.map((p) => (p.index / senders.length) * interval);
  const tick = (): void => {
    const now = performance.now();
    let all = true;
    for (const p of senders) {
      if (p.sent >= perSender) continue;
      all = false;
      const offset = offsets[p.index]!;
      const due = Math.min(perSender, Math.floor((now - t0 - offset) / interval) + 1);
      if (due <= p.sent) continue;
      const lag = now - (t0 + offset + p.sent * interval);
      if (lag > sendLagMax) sendLagMax = lag;
      let out = '';
      while (p.sent < due) {
        const seq = p.sent++;
        const ts = (t0 + offset + seq * interval).toFixed(3);
        out += `${p.head}${idPrefix}${seq}'><body>${ts} ${p.index} ${seq}</body></message>`;
      }
      p.session.socket.write(out);
    }
    if (all) clearInterval(ticker);
  };
  const ticker = setInterval(tick, 1);
  tick();
  return {
    stop: () => clearInterval(ticker),
    get sendLagMax() {
      return sendLagMax;
    },
  };
}
