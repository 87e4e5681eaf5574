/**
 * The messages scenario: P pairs of sessions; both members of a pair send M chat messages
 * to the other's full JID. Each body carries the send time, the sender and a sequence
 * number; the receiver computes the one-way latency and counts, so loss, reordering and
 * foreign messages are detected. `--rate 0`: as fast as possible with at most `--window`
 * messages in flight per sender; `--rate R`: R messages/s per sender, latency from the
 * scheduled send time (no coordinated omission).
 */
import { O, account } from './options.ts';
import { emit, info, latencyFigures, round, setPartial, type Result } from './report.ts';
import { cpuFigures, cpuSnapshot, type Server, type ServerStats } from './server.ts';
import { paceSenders, type Pacer } from './pacing.ts';
import { closeAll, runLogins, type Bound } from './xmpp.ts';

/** Untimed warm-up messages per sender before a message scenario is measured. */
export const WARMUP_MESSAGES = 100;
/** A message scenario gives up after this long without a delivery (the rest counts as lost). */
export const STALL_MS = 5000;

interface Peer {
  index: number;
  session: Bound;
  partner: number;
  /** Prefix of every message this peer sends: `<message to='partner full JID' type='chat' id='`. */
  head: string;
  sent: number;
  /** Messages of this peer its partner has received. */
  delivered: number;
  /** Messages this peer has received from its partner. */
  received: number;
  /** Next sequence number expected from the partner (reordering check). */
  expect: number;
  /** Unparsed tail of the input. */
  pending: string;
}

export async function messageScenario(server: Server): Promise<boolean> {
  const PAIRS = O.pairs;
  const MESSAGES = O.messagesPerSender;
  const RATE = O.rate;
  const WINDOW = O.window;
  const n = 2 * PAIRS;
  const li = await runLogins(n, O.concurrency, account, 'p');
  if (li.errors.length > 0) {
    emit({ scenario: 'messages', error: `${li.errors.length} logins failed, first: ${li.errors[0]}` });
    await closeAll(li.sessions);
    return false;
  }
  const total = n * MESSAGES;
  const latencies = new Float64Array(total);
  let deliveredTotal = 0;
  let outOfOrder = 0;
  let foreign = 0;
  let errorsSeen = 0;
  const peers: Peer[] = [];
  for (let i = 0; i < n; i++) {
    const partner = i ^ 1;
    peers.push({
      index: i,
      session: li.sessions[i]!,
      partner,
      head: '',
      sent: 0,
      delivered: 0,
      received: 0,
      expect: 0,
      pending: li.sessions[i]!.rest,
    });
  }
  for (const p of peers) p.head = `<message to='${peers[p.partner]!.session.jid}' type='chat' id='`;

  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => (finish = r));
  let tEnd = 0;
  let lastProgress = performance.now();
  /** Ends the scenario early (a closed stream, a stall): what is missing by then counts as lost. */
  const giveUp = (why: string): void => {
    if (tEnd !== 0) return;
    info(`messages: ${why}`);
    tEnd = performance.now();
    finish();
  };

  /** `count` messages from p in one write, stamped `ts` (ms, performance.now() clock). */
  const send = (p: Peer, count: number, ts: number): void => {
    let out = '';
    const stamp = ts.toFixed(3);
    for (let k = 0; k < count; k++) {
      const seq = p.sent++;
      out += `${p.head}${seq}'><body>${stamp} ${p.index} ${seq}</body></message>`;
    }
    p.session.socket.write(out);
  };

  const pump = (p: Peer): void => {
    const room = Math.min(WINDOW - (p.sent - p.delivered), MESSAGES - p.sent);
    if (room > 0) send(p, room, performance.now());
  };

  const onData = (p: Peer, chunk: string): void => {
    const now = performance.now();
    const buf = p.pending.length ? p.pending + chunk : chunk;
    let pos = 0;
    const from = peers[p.partner]!;
    let got = 0;
    let unfinished = false;
    for (;;) {
      const b = buf.indexOf('<body>', pos);
      if (b < 0) break;
      const e = buf.indexOf('</body>', b);
      if (e < 0) {
        pos = b;
        unfinished = true;
        break;
      }
      const body = buf.slice(b + 6, e);
      pos = e + 7;
      if (body.charCodeAt(0) === 87 /* 'W' */) {
        // A warm-up message: counted apart, not measured.
        if (++warmReceived === warmTotal) warmDone();
        continue;
      }
      const s1 = body.indexOf(' ');
      const s2 = body.indexOf(' ', s1 + 1);
      const sender = Number(body.slice(s1 + 1, s2));
      if (sender !== from.index) {
        foreign++;
        continue;
      }
      const seq = Number(body.slice(s2 + 1));
      if (seq !== p.expect) outOfOrder++;
      p.expect = seq + 1;
      latencies[deliveredTotal++] = now - Number(body.slice(0, s1));
      p.received++;
      from.delivered++;
      got++;
    }
    if (chunk.includes('<stream:error') || chunk.includes('</stream:stream>') || chunk.includes("type='error'") || chunk.includes('type="error"')) {
      errorsSeen++;
      info(`messages: unexpected input for ${p.session.jid}: ${chunk.slice(0, 500)}`);
    }
    // Keep an unfinished <body>…, or else the last few characters (a '<body' split across chunks).
    p.pending = unfinished ? buf.slice(pos) : buf.slice(Math.max(pos, buf.length - 5));
    if (got > 0) {
      lastProgress = now;
      if (RATE === 0) pump(from);
    }
    if (deliveredTotal === total && tEnd === 0) {
      tEnd = now;
      finish();
    }
  };

  for (const p of peers) {
    const sock = p.session.socket;
    sock.on('data', (d: Buffer) => onData(p, d.toString('latin1')));
    sock.on('close', () => {
      if (deliveredTotal < total) {
        errorsSeen++;
        giveUp(`${p.session.jid} was closed by the server`);
      }
    });
  }

  // Untimed warm-up: WARMUP_MESSAGES from every sender at once, so that the measurement
  // starts with the message path compiled on both sides (without it the first ~200 ms
  // run interpreted code and dominate p99 at moderate rates).
  const warmTotal = n * WARMUP_MESSAGES;
  let warmReceived = 0;
  let warmDone: () => void = () => {};
  const warmed = new Promise<void>((r) => (warmDone = r));
  for (const p of peers) {
    let out = '';
    for (let k = 0; k < WARMUP_MESSAGES; k++) out += `${p.head}w${k}'><body>W ${p.index} ${k}</body></message>`;
    p.session.socket.write(out);
  }
  const warmTimer = setTimeout(() => warmDone(), STALL_MS);
  await warmed;
  clearTimeout(warmTimer);
  if (warmReceived < warmTotal) {
    emit({ scenario: 'messages', error: `warm-up: ${warmReceived} of ${warmTotal} messages delivered in ${STALL_MS / 1000} s` });
    await closeAll(li.sessions);
    await server.waitIdle();
    return false;
  }
  lastProgress = performance.now();

  const c0 = await cpuSnapshot(server);
  const t0 = performance.now();
  const make = (seconds: number, serverNow: ServerStats | null, extra: Result): Result => {
    const sentTotal = peers.reduce((a, p) => a + p.sent, 0);
    return {
      scenario: 'messages',
      transport: O.transport,
      tls: O.encrypted,
      pairs: PAIRS,
      senders: n,
      messages_per_sender: MESSAGES,
      rate_per_sender: RATE,
      window: RATE === 0 ? WINDOW : null,
      // With --rate: the most a message was sent after its scheduled time (generator lag), ms.
      send_lag_max_ms: pacer === null ? null : round(pacer.sendLagMax),
      sent: sentTotal,
      delivered: deliveredTotal,
      lost: sentTotal - deliveredTotal,
      out_of_order: outOfOrder,
      foreign,
      errors: errorsSeen,
      seconds: round(seconds, 3),
      per_second: round(deliveredTotal / seconds, 0),
      ...latencyFigures(Float64Array.from(latencies.subarray(0, deliveredTotal))),
      ...cpuFigures(c0, seconds, deliveredTotal, serverNow),
      ...extra,
    };
  };
  setPartial((s) => make((performance.now() - t0) / 1000, s, { partial: true }));

  let pacer: Pacer | null = null;
  if (RATE === 0) {
    for (const p of peers) pump(p);
  } else {
    // Each sender is due `RATE` messages a second from its own offset.
    pacer = paceSenders(peers, MESSAGES, 1000 / RATE, t0);
  }
  // Nothing delivered for STALL_MS while nothing is left to send (or nothing at all): lost.
  const watchdog = setInterval(() => {
    const idle = performance.now() - lastProgress;
    const allSent = peers.every((p) => p.sent >= MESSAGES);
    if (idle > STALL_MS && (allSent || RATE === 0)) giveUp(`no delivery for ${STALL_MS / 1000} s; giving up on the rest`);
  }, 250);
  await finished;
  pacer?.stop();
  clearInterval(watchdog);
  const seconds = (tEnd - t0) / 1000;
  const s1 = await server.stats();
  setPartial(null);
  const r = make(seconds, s1, {});
  emit(r);
  await closeAll(li.sessions);
  await server.waitIdle();
  return r.lost === 0 && outOfOrder === 0 && foreign === 0 && errorsSeen === 0;
}
