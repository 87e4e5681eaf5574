/**
 * The chat scenario: U online users (logged in untimed, initial presence sent) send
 * `type='chat'` messages to random other users' bare JIDs, at increasing total rates (one
 * step per rate of --chat-rates, each --chat-duration seconds). Message k of a step is due
 * at t0 + k/R, sent by user k mod U to a random other user; a 1 ms ticker sends what is
 * due, each sender's due messages in one write, stamped with the time they were due (so a
 * late generator cannot hide queueing). The receiver checks that a message is for it, from
 * its sender's JID, not seen before and in order per sender, and takes its latency.
 *
 * One `chat` line per step (sent, delivered, lost, latency p50/p99/max, CPU), then a
 * `chat-sweep` line: the highest rate with p99 < 100 ms and nothing lost at it and every
 * step before it, and the p99 at 1000 msg/s.
 */
import { O, account } from './options.ts';
import { emit, info, latencyFigures, round, setPartial, sleep, type Result } from './report.ts';
import { cpuFigures, cpuSnapshot, type Server, type ServerStats } from './server.ts';
import { STALL_MS } from './messages.ts';
import { Sweep } from './sweep.ts';
import { closeAll, fastAttr, runLogins, type Bound } from './xmpp.ts';

/** The rate whose p99 the sweep line reports apart. */
const REF_RATE = 1000;
/** Untimed warm-up messages per user. */
const WARMUP_PER_USER = 20;
/** Stray input logged per step, at most. */
const LOG_LIMIT = 5;

interface User {
  index: number;
  session: Bound;
  /** Unscanned tail of the input. */
  pending: string;
  /** Messages due from this user in the current tick. */
  out: string;
}

/** What one step counts; the scanner writes into the current one. */
interface Counts {
  step: number;
  total: number;
  sent: number;
  delivered: number;
  /** The recipient of message k. */
  recipients: Uint16Array;
  /** One bit per message: duplicates. */
  seen: Uint8Array;
  /** Last k received per (sender, receiver): reordering. */
  lastK: Int32Array;
  latencies: Float64Array;
  duplicates: number;
  outOfOrder: number;
  foreign: number;
  /** Messages of an earlier step (one given up on) arriving late. */
  late: number;
  /** Presence stanzas (ignored; e.g. a session's own initial presence coming back). */
  presences: number;
  unexpected: number;
  errors: number;
  logged: number;
}

function counts(step: number, total: number, users: number): Counts {
  return {
    step,
    total,
    sent: 0,
    delivered: 0,
    recipients: new Uint16Array(total),
    seen: new Uint8Array(Math.ceil(total / 8)),
    lastK: new Int32Array(users * users).fill(-1),
    latencies: new Float64Array(total),
    duplicates: 0,
    outOfOrder: 0,
    foreign: 0,
    late: 0,
    presences: 0,
    unexpected: 0,
    errors: 0,
    logged: 0,
  };
}

export async function chatScenario(server: Server): Promise<boolean> {
  const U = O.chatUsers;
  const domain = server.domain;
  const li = await runLogins(U, O.concurrency, account, 'c');
  if (li.errors.length > 0) {
    emit({ scenario: 'chat', tls: O.encrypted, error: `${li.errors.length} logins failed, first: ${li.errors[0]}` });
    await closeAll(li.sessions);
    await server.waitIdle();
    return false;
  }
  const users: User[] = li.sessions.map((b, i) => ({ index: i, session: b, pending: b.rest, out: '' }));
  /** `<message type='chat' to='bench<r>@domain' id='` per recipient r. */
  const toHead = users.map((u) => `<message type='chat' to='${account(u.index)}@${domain}' id='`);
  /** The start of a sender's JID in `from` (the server may give the full JID or the bare one; the domain as the user sent it). */
  const fromBare = users.map((u) => `${account(u.index)}@`);

  let c = counts(0, 0, U);
  let warmReceived = 0;
  let warmTotal = 0;
  let warmDone: () => void = () => {};
  let finish: () => void = () => {};
  let tEnd = 0;
  let lastProgress = performance.now();
  let closed: string | null = null;
  let giveUp: ((why: string) => void) | null = null;

  const note = (u: User, what: string, text: string): void => {
    if (c.logged++ < LOG_LIMIT) info(`chat: ${what} for ${account(u.index)}: ${text.slice(0, 500)}`);
  };
  /** Input between messages: whitespace, presence (ignored), errors, anything else. */
  const stray = (u: User, text: string): void => {
    if (/^\s*$/.test(text)) return;
    if (text.includes('<stream:error') || text.includes('</stream:stream>') || /type=['"]error['"]/.test(text)) {
      c.errors++;
      note(u, 'error', text);
    } else if (/^\s*<presence[\s>/]/.test(text) && !text.includes('<message') && !text.includes('<iq')) {
      c.presences++;
    } else {
      c.unexpected++;
      note(u, 'unexpected input', text);
    }
  };

  /**
   * Per received chunk: each complete `<message …>…</message>`: its type, its body
   * (`due-time step k`), its `from`. A few indexOf per message: every user's messages land
   * on this one process.
   */
  const onData = (u: User, chunk: string): void => {
    const now = performance.now();
    const buf = u.pending.length ? u.pending + chunk : chunk;
    let pos = 0;
    let got = 0;
    for (;;) {
      const start = buf.indexOf('<message', pos);
      if (start < 0) break;
      const end = buf.indexOf('</message>', start);
      if (end < 0) break;
      if (start > pos) stray(u, buf.slice(pos, start));
      pos = end + 10;
      const tagEnd = buf.indexOf('>', start);
      const tag = buf.slice(start, tagEnd + 1);
      if (fastAttr(tag, ' type=') === 'error') {
        c.errors++;
        note(u, 'error message (a bounce)', buf.slice(start, pos));
        continue;
      }
      const b = buf.indexOf('<body', tagEnd);
      if (b < 0 || b > end) {
        // A message without a body (a chat state, a receipt request…): not ours.
        c.unexpected++;
        note(u, 'message without a body', buf.slice(start, pos));
        continue;
      }
      const bs = buf.indexOf('>', b) + 1;
      const body = buf.slice(bs, buf.indexOf('</body>', bs));
      if (body.charCodeAt(0) === 87 /* 'W' */) {
        if (++warmReceived === warmTotal) warmDone();
        continue;
      }
      const s1 = body.indexOf(' ');
      const s2 = body.indexOf(' ', s1 + 1);
      const step = Number(body.slice(s1 + 1, s2));
      const k = Number(body.slice(s2 + 1));
      if (step !== c.step) {
        c.late++;
        continue;
      }
      const s = k % U;
      const from = fastAttr(tag, ' from=');
      if (!(k >= 0 && k < c.sent) || c.recipients[k] !== u.index || from === null || !from.startsWith(fromBare[s]!)) {
        c.foreign++;
        note(u, 'foreign message', buf.slice(start, pos));
        continue;
      }
      const mask = 1 << (k & 7);
      if (c.seen[k >> 3]! & mask) {
        c.duplicates++;
        continue;
      }
      c.seen[k >> 3]! |= mask;
      const pair = s * U + u.index;
      if (k < c.lastK[pair]!) c.outOfOrder++;
      c.lastK[pair] = k;
      c.latencies[c.delivered++] = now - Number(body.slice(0, s1));
      got++;
    }
    u.pending = pos === 0 ? buf : buf.slice(pos);
    if (got > 0) {
      lastProgress = now;
      if (c.delivered === c.total && c.sent === c.total && tEnd === 0) {
        tEnd = now;
        finish();
      }
    }
  };

  for (const u of users) {
    const sock = u.session.socket;
    sock.on('data', (d: Buffer) => onData(u, d.toString('latin1')));
    sock.on('close', () => {
      closed ??= `${u.session.jid} was closed by the server`;
      giveUp?.(closed);
    });
  }
  // Whatever came after the login (the session's own presence, say).
  for (const u of users) {
    const rest = u.pending;
    u.pending = '';
    if (rest) onData(u, rest);
  }

  // Untimed warm-up: WARMUP_PER_USER messages from every user to random others, at once, so
  // that both sides' message paths are compiled before anything is measured.
  warmTotal = U * WARMUP_PER_USER;
  const warmed = new Promise<void>((r) => (warmDone = r));
  for (const u of users) {
    let out = '';
    for (let k = 0; k < WARMUP_PER_USER; k++) {
      const r = (u.index + 1 + Math.floor(Math.random() * (U - 1))) % U;
      out += `${toHead[r]}w${k}'><body>W ${u.index} ${k}</body></message>`;
    }
    u.session.socket.write(out);
  }
  let lastWarm = 0;
  let lastWarmAt = performance.now();
  const warmWatch = setInterval(() => {
    const now = performance.now();
    if (warmReceived !== lastWarm) {
      lastWarm = warmReceived;
      lastWarmAt = now;
    } else if (now - lastWarmAt > STALL_MS || closed) warmDone();
  }, 50);
  await warmed;
  clearInterval(warmWatch);
  if (warmReceived < warmTotal || closed) {
    emit({ scenario: 'chat', tls: O.encrypted, users: U, error: `warm-up: ${warmReceived} of ${warmTotal} messages delivered${closed ? `; ${closed}` : ''}` });
    await closeAll(li.sessions);
    await server.waitIdle();
    return false;
  }
  info(`chat: ${U} users online, ${warmTotal} warm-up messages delivered`);

  const sweep = new Sweep('chat', REF_RATE, info);
  let ok = true;
  let stepNo = 0;
  for (const rate of O.chatRates) {
    stepNo++;
    const total = Math.max(1, Math.round(rate * O.chatDuration));
    c = counts(stepNo, total, U);
    for (const u of users) {
      if (u.pending.includes('<')) stray(u, u.pending);
      u.pending = '';
    }
    const finished = new Promise<void>((r) => (finish = r));
    tEnd = 0;
    let sendEnd = 0;
    let sendLagMax = 0;
    let gaveUp: string | null = null;
    /** The step ended with the server still delivering, long after the last send: overloaded, not (known to be) lossy. */
    let fellBehind = false;
    giveUp = (why: string): void => {
      if (tEnd !== 0) return;
      gaveUp = why;
      info(`chat: ${why}`);
      tEnd = performance.now();
      finish();
    };
    const interval = 1000 / rate;
    const c0 = await cpuSnapshot(server);
    const t0 = performance.now();
    lastProgress = t0;
    const make = (seconds: number, serverNow: ServerStats | null, extra: Result): Result => ({
      scenario: 'chat',
      transport: O.transport,
      tls: O.encrypted,
      step: stepNo,
      users: U,
      // Offered messages/s, all senders together.
      rate,
      duration_s: O.chatDuration,
      send_lag_max_ms: round(sendLagMax),
      sent: c.sent,
      delivered: c.delivered,
      undelivered: c.sent - c.delivered,
      // Not delivered by the end of the step; unknown (null) when the server was still delivering.
      lost: fellBehind ? null : c.sent - c.delivered,
      fell_behind: fellBehind,
      duplicates: c.duplicates,
      out_of_order: c.outOfOrder,
      foreign: c.foreign,
      late: c.late,
      presences: c.presences,
      unexpected: c.unexpected,
      errors: c.errors,
      gave_up: gaveUp,
      seconds: round(seconds, 3),
      send_seconds: round(((sendEnd || performance.now()) - t0) / 1000, 3),
      // Delivered / time from the first send to the last delivery.
      messages_per_second: round(c.delivered / seconds, 1),
      per_second: round(c.delivered / seconds, 1),
      ...latencyFigures(Float64Array.from(c.latencies.subarray(0, c.delivered))),
      ...cpuFigures(c0, seconds, c.delivered, serverNow),
      p99_limit_ms: 100,
      ...extra,
    });
    setPartial((s) => make((performance.now() - t0) / 1000, s, { partial: true }));

    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - t0) / interval) + 1);
      if (due <= c.sent) return;
      const lag = now - (t0 + c.sent * interval);
      if (lag > sendLagMax) sendLagMax = lag;
      const touched: User[] = [];
      for (let k = c.sent; k < due; k++) {
        const s = k % U;
        const r = (s + 1 + Math.floor(Math.random() * (U - 1))) % U;
        c.recipients[k] = r;
        const u = users[s]!;
        if (u.out === '') touched.push(u);
        u.out += `${toHead[r]}${stepNo}-${k}'><body>${(t0 + k * interval).toFixed(3)} ${stepNo} ${k}</body></message>`;
      }
      c.sent = due;
      for (const u of touched) {
        u.session.socket.write(u.out);
        u.out = '';
      }
      if (c.sent === total) {
        clearInterval(ticker);
        sendEnd = now;
      }
    };
    const ticker = setInterval(tick, 1);
    tick();
    // Nothing delivered for STALL_MS once everything is sent, or the server still busy long
    // after: give up, what is missing counts as lost.
    const drainMax = Math.max(10_000, 2 * O.chatDuration * 1000);
    const watchdog = setInterval(() => {
      const now = performance.now();
      if (c.sent < total) return;
      if (now - lastProgress > STALL_MS) giveUp?.(`step ${stepNo} (${rate} msg/s): no delivery for ${STALL_MS / 1000} s; giving up on the rest`);
      else if (now - sendEnd > drainMax) {
        fellBehind = true;
        giveUp?.(`step ${stepNo} (${rate} msg/s): the server is still delivering ${drainMax / 1000} s after the last send; it fell behind`);
      }
    }, 250);
    if (closed) giveUp(closed);
    await finished;
    clearInterval(ticker);
    clearInterval(watchdog);
    const seconds = (tEnd - t0) / 1000;
    const s1 = await server.stats();
    setPartial(null);
    const res = make(seconds, s1, {});
    emit(res);
    const clean = (res.lost === 0 || fellBehind) && c.duplicates === 0 && c.outOfOrder === 0 && c.foreign === 0 && c.errors === 0 && !closed;
    ok = ok && clean;
    if (!sweep.step(res, clean, fellBehind) || closed) break;
    // A moment between steps: the next one starts on an idle server.
    await sleep(300);
  }
  emit({ scenario: 'chat-sweep', transport: O.transport, tls: O.encrypted, users: U, duration_s: O.chatDuration, ...sweep.summary(O.chatRates) });
  await closeAll(li.sessions);
  await server.waitIdle();
  return ok;
}
