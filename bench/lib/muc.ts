/**
 * The muc scenario (multi-user chat, XEP-0045): N sessions join one room
 * `bench@<muc service>` (the first creates it and accepts the default configuration, an
 * instant room; the others join a few at a time; `muc-join` line: joins/s, join latency,
 * presences received against the N² expected). Then the first S occupants send M groupchat
 * messages each; the room fans every message out to all N occupants, the sender included.
 * Each body carries the send time, the sender and a sequence number; every occupant counts
 * per sender, so loss, duplication and reordering are detected. `--muc-rate 0`: as fast as
 * possible with `--window` messages per sender in flight (from send until the sender sees
 * its own message reflected); `--muc-rate R`: R room messages/s over all senders, from the
 * scheduled send times; `--muc-rates`: one step (one `muc` line) per rate, then a
 * `muc-sweep` line.
 *
 * Written for any server: Prosody and ejabberd lock a new room too and accept the empty
 * submit form; they send other status codes, room notices and extra children, in their
 * own order; nothing Parley-only (occupant-id, stanza-id) is relied on.
 */
import { O, account, mucMessagesPerSender } from './options.ts';
import { emit, info, latencyFigures, round, setPartial, type Result } from './report.ts';
import { cpuFigures, cpuSnapshot, type Server, type ServerStats } from './server.ts';
import { STALL_MS, WARMUP_MESSAGES } from './messages.ts';
import { paceSenders, type Pacer } from './pacing.ts';
import { P99_LIMIT_MS, Sweep } from './sweep.ts';
import { StanzaReader, attr, closeAll, fastAttr, hasStatus, runLogins, type Bound } from './xmpp.ts';

/** The room rate whose p99 the sweep line reports apart. */
const REF_RATE = 20;
const NS_MUC = 'http://jabber.org/protocol/muc';
/** Room joins in flight during the join phase. */
const MUC_JOIN_CONCURRENCY = 4;
/** A setup step (room creation, its configuration, one join) fails after this long without its answer. */
const MUC_SETUP_TIMEOUT_MS = 10_000;
/** Stray input (not a groupchat message with a body) logged per phase, at most. */
const MUC_LOG_LIMIT = 5;

interface Occupant {
  /** Occupant i is account bench<i> with nickname u<i>; the first S are the senders. */
  index: number;
  session: Bound;
  nick: string;
  /** Unparsed tail of the input (message phase). */
  pending: string;
  /** The setup phase's reader. */
  reader: StanzaReader;
  /** What reads this occupant's input: the setup splitter, then the message scanner. */
  onData: (o: Occupant, chunk: string) => void;
  /** Available presences received from the room. */
  presences: number;
  /** Subject messages received from the room. */
  subjects: number;
  /** Waiting for this occupant's self-presence (status 110) or an error presence from its occupant JID. */
  onSelf: ((stanza: string) => void) | null;
  /** Waiting for an iq. */
  onIq: ((stanza: string) => void) | null;
  // As a sender:
  /** `<message type='groupchat' to='room' id='` */
  head: string;
  sent: number;
  /** This sender's own messages the room has reflected back to it (the window counts from send to reflection). */
  reflected: number;
}

/** What one measured step counts; the message scanner writes into the current one. */
interface MucCounts {
  expected: number;
  delivered: number;
  latencies: Float64Array;
  /** One bit per (receiver, sender, sequence number): duplicates. */
  seen: Uint8Array;
  /** Next sequence number expected per (receiver, sender): reordering. */
  expect: Int32Array;
  duplicates: number;
  outOfOrder: number;
  foreign: number;
  unexpected: number;
  errors: number;
  /** Stray input logged so far (at most MUC_LOG_LIMIT). */
  logged: number;
}

function mucCounts(messagesPerSender: number, occupants: number, senders: number): MucCounts {
  const expected = messagesPerSender * senders * occupants;
  return {
    expected,
    delivered: 0,
    latencies: new Float64Array(expected),
    seen: new Uint8Array(Math.ceil(expected / 8)),
    expect: new Int32Array(occupants * senders),
    duplicates: 0,
    outOfOrder: 0,
    foreign: 0,
    unexpected: 0,
    errors: 0,
    logged: 0,
  };
}

export async function mucScenario(server: Server): Promise<boolean> {
  const n = O.mucOccupants;
  const S = O.mucSenders;
  const WINDOW = O.window;
  const room = `bench@${O.mucService}`;
  const li = await runLogins(n, O.concurrency, account, 'm');
  if (li.errors.length > 0) {
    emit({ scenario: 'muc-join', tls: O.encrypted, error: `${li.errors.length} logins failed, first: ${li.errors[0]}` });
    await closeAll(li.sessions);
    await server.waitIdle();
    return false;
  }
  const occupants: Occupant[] = [];
  for (let i = 0; i < n; i++) {
    occupants.push({
      index: i,
      session: li.sessions[i]!,
      nick: `u${i}`,
      pending: '',
      reader: new StanzaReader(),
      onData: () => {},
      presences: 0,
      subjects: 0,
      onSelf: null,
      onIq: null,
      head: `<message type='groupchat' to='${room}' id='`,
      sent: 0,
      reflected: 0,
    });
  }

  // -- Setup phase: creation, configuration, joins (stanza by stanza, untimed by the message figures).

  let presencesTotal = 0;
  let setupUnexpected = 0;
  let setupErrors = 0;
  let setupLogged = 0;
  /** Messages from the room itself with a body (a server's notices: "this room is not anonymous"…). */
  let notices = 0;
  /** Presences from elsewhere than the room (a session's own initial presence coming back): ignored. */
  let otherPresences = 0;
  /** Presences from the room's own JID (ejabberd sends its entity capabilities, XEP-0115, to each joiner): ignored. */
  let roomPresences = 0;
  const roomSlash = `${room}/`;
  let closed: string | null = null;
  /** Ends the step in progress early (a closed stream, a stall): what is missing by then counts as lost. */
  let giveUp: ((why: string) => void) | null = null;
  const setupNote = (o: Occupant, what: string, stanza: string): void => {
    if (setupLogged++ < MUC_LOG_LIMIT) info(`muc join: ${what} for ${o.nick} (${o.session.jid}): ${stanza.slice(0, 500)}`);
  };
  /**
   * The setup reader, stanza by stanza (other servers than Parley send other extras: status
   * codes, room notices, their own order): available presences from the room's occupant
   * JIDs are counted, the self-presence (status 110) or an error presence from one's own
   * occupant JID ends a join, subjects are counted, iqs go to whoever waits for one.
   */
  const onSetup = (o: Occupant, chunk: string): void => {
    o.reader.feed(chunk);
    for (let st = o.reader.next(); st !== null; st = o.reader.next()) {
      if (st.startsWith('<presence')) {
        const type = attr(st, 'type');
        const from = attr(st, 'from');
        if (from === null || !(from.startsWith(roomSlash) || from === room)) {
          otherPresences++;
          continue;
        }
        if (from === room && type !== 'error') {
          // From the room itself, not an occupant (ejabberd: the room's entity capabilities).
          roomPresences++;
          continue;
        }
        const self = from === `${room}/${o.nick}`;
        if (type === 'error') {
          setupErrors++;
          if (self && o.onSelf) o.onSelf(st);
          else setupNote(o, 'error presence', st);
        } else if (type !== null) {
          setupUnexpected++;
          setupNote(o, `presence of type ${type}`, st);
        } else {
          o.presences++;
          presencesTotal++;
          if (self && hasStatus(st, 110) && o.onSelf) o.onSelf(st);
        }
      } else if (st.startsWith('<message')) {
        if (st.includes('<subject')) o.subjects++;
        else if (attr(st, 'from') === room && attr(st, 'type') !== 'error') notices++;
        else {
          setupUnexpected++;
          setupNote(o, 'message', st);
        }
      } else if (st.startsWith('<iq') && o.onIq) {
        o.onIq(st);
      } else {
        if (st.includes('<stream:error') || st.startsWith('</stream:stream')) setupErrors++;
        else setupUnexpected++;
        setupNote(o, 'unexpected input', st);
      }
    }
  };
  /** Waits for the stanza that `install` hands to its callback, or fails after MUC_SETUP_TIMEOUT_MS. */
  const awaitStanza = (what: string, install: (cb: ((st: string) => void) | null) => void): Promise<string> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        install(null);
        reject(new Error(`no ${what} within ${MUC_SETUP_TIMEOUT_MS / 1000} s`));
      }, MUC_SETUP_TIMEOUT_MS);
      install((st) => {
        clearTimeout(t);
        install(null);
        resolve(st);
      });
    });
  const join = async (o: Occupant): Promise<{ ms: number; stanza: string }> => {
    const self = awaitStanza(`self-presence for ${o.nick}`, (cb) => (o.onSelf = cb));
    const t0 = performance.now();
    o.session.socket.write(`<presence to='${room}/${o.nick}'><x xmlns='${NS_MUC}'><history maxstanzas='0'/></x></presence>`);
    const stanza = await self;
    if (attr(stanza, 'type') === 'error') throw new Error(`${o.nick} could not join: ${stanza.slice(0, 500)}`);
    return { ms: performance.now() - t0, stanza };
  };

  for (const o of occupants) {
    o.onData = onSetup;
    const sock = o.session.socket;
    sock.on('data', (d: Buffer) => o.onData(o, d.toString('latin1')));
    sock.on('close', () => {
      closed ??= `${o.session.jid} was closed by the server`;
      giveUp?.(closed);
    });
    // Whatever came after the login (the session's own presence, say).
    if (o.session.rest) onSetup(o, o.session.rest);
  }

  const joinLatencies = new Float64Array(n);
  let joined = 0;
  const jc0 = await cpuSnapshot(server);
  const jt0 = performance.now();
  const joinResult = (seconds: number, serverNow: ServerStats | null, extra: Result): Result => ({
    scenario: 'muc-join',
    transport: O.transport,
    tls: O.encrypted,
    room,
    occupants: n,
    joined,
    concurrency: MUC_JOIN_CONCURRENCY,
    seconds: round(seconds, 3),
    per_second: round(joined / seconds, 1),
    ...latencyFigures(Float64Array.from(joinLatencies.subarray(0, joined))),
    // Every occupant receives one available presence per occupant, its own included: n².
    presences: presencesTotal,
    presences_expected: n * n,
    subjects: occupants.reduce((a, o) => a + o.subjects, 0),
    notices,
    room_presences: roomPresences,
    other_presences: otherPresences,
    unexpected: setupUnexpected,
    errors: setupErrors,
    ...cpuFigures(jc0, seconds, joined, serverNow),
    ...extra,
  });
  setPartial((s) => joinResult((performance.now() - jt0) / 1000, s, { partial: true }));
  try {
    // The first occupant creates the room (status 201: new, locked) and accepts the default
    // configuration (an instant room, XEP-0045 §10.1.2), which unlocks it.
    const created = await join(occupants[0]!);
    joinLatencies[joined++] = created.ms;
    if (hasStatus(created.stanza, 201)) {
      const owner = occupants[0]!;
      const result = awaitStanza('answer to the instant-room configuration', (cb) => (owner.onIq = cb));
      owner.session.socket.write(
        `<iq type='set' id='c1' to='${room}'><query xmlns='${NS_MUC}#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`,
      );
      const r = await result;
      if (attr(r, 'type') !== 'result' || attr(r, 'id') !== 'c1') throw new Error(`instant room refused: ${r.slice(0, 500)}`);
    } else {
      info(`muc join: the room existed already (no status 201 in the creator's self-presence): ${created.stanza.slice(0, 500)}`);
    }
    let next = 1;
    const worker = async (): Promise<void> => {
      while (next < n) {
        const o = occupants[next++]!;
        const j = await join(o);
        joinLatencies[joined++] = j.ms;
      }
    };
    await Promise.all(Array.from({ length: Math.min(MUC_JOIN_CONCURRENCY, n - 1) }, worker));
  } catch (e) {
    setPartial(null);
    emit({ ...joinResult((performance.now() - jt0) / 1000, await server.stats(), {}), error: (e as Error).message });
    await closeAll(li.sessions);
    await server.waitIdle();
    return false;
  }
  const joinSeconds = (performance.now() - jt0) / 1000;
  const js1 = await server.stats();
  // The presences of the last newcomers (and the subjects) may still be on their way.
  const settle = performance.now() + 5000;
  while ((presencesTotal < n * n || occupants.some((o) => o.subjects === 0)) && performance.now() < settle && !closed) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 100));
  setPartial(null);
  const jr = joinResult(joinSeconds, js1, {});
  emit(jr);
  let ok = presencesTotal === n * n && setupErrors === 0 && setupUnexpected === 0 && !closed;
  if (presencesTotal !== n * n) info(`muc join: ${presencesTotal} occupant presences received, expected ${n * n} (one per occupant per occupant)`);
  if (closed) {
    await closeAll(li.sessions);
    await server.waitIdle();
    return false;
  }

  // -- Message phase: groupchat messages scanned as strings, like the one-to-one scenario.

  const senders = occupants.slice(0, S);
  /** The occupant JID `room/u<s>` per sender: a reflected message must come from it. */
  const fromJid = senders.map((o) => `${room}/${o.nick}`);
  let c: MucCounts = mucCounts(1, n, S);
  let M = 1;
  let rate = 0;
  let stepNo = 0;
  let warmReceived = 0;
  let warmTotal = 0;
  let warmDone: () => void = () => {};
  let finish: () => void = () => {};
  let tEnd = 0;
  let lastProgress = performance.now();

  const stray = (o: Occupant, text: string): void => {
    if (/^\s*$/.test(text)) return;
    if (/type=['"]error['"]/.test(text) || text.includes('<stream:error') || text.includes('</stream:stream>')) c.errors++;
    else c.unexpected++;
    if (c.logged++ < MUC_LOG_LIMIT) info(`muc: unexpected input for ${o.nick} (${o.session.jid}): ${text.slice(0, 500)}`);
  };

  const pump = (p: Occupant): void => {
    const space = Math.min(WINDOW - (p.sent - p.reflected), M - p.sent);
    if (space <= 0) return;
    const stamp = performance.now().toFixed(3);
    let out = '';
    for (let k = 0; k < space; k++) {
      const seq = p.sent++;
      out += `${p.head}${stepNo}-${seq}'><body>${stamp} ${p.index} ${seq}</body></message>`;
    }
    p.session.socket.write(out);
  };

  /**
   * The message-phase reader, per received chunk: for each complete `<message …>…</message>`,
   * its start tag (type='groupchat', from the sender's occupant JID) and its body
   * (`send-time sender seq`); anything between messages is stray input. The cost is a few
   * indexOf per delivery: every occupant's deliveries land on this one process.
   */
  const onMessages = (o: Occupant, chunk: string): void => {
    const now = performance.now();
    const buf = o.pending.length ? o.pending + chunk : chunk;
    let pos = 0;
    let got = 0;
    let own = false;
    for (;;) {
      const start = buf.indexOf('<message', pos);
      if (start < 0) break;
      const end = buf.indexOf('</message>', start);
      if (end < 0) break;
      if (start > pos) stray(o, buf.slice(pos, start));
      pos = end + 10;
      const tagEnd = buf.indexOf('>', start);
      const tag = buf.slice(start, tagEnd);
      // `<body>`, or `<body xmlns='jabber:client'>` from a serializer that repeats the namespace.
      const b = buf.indexOf('<body', tagEnd);
      if (b < 0 || b > end) {
        // No body (a subject change, a chat state): not expected during a step.
        stray(o, buf.slice(start, pos));
        continue;
      }
      if (fastAttr(tag, ' type=') !== 'groupchat') {
        stray(o, buf.slice(start, pos));
        continue;
      }
      const body = buf.slice(buf.indexOf('>', b) + 1, buf.indexOf('</body>', b));
      if (body.charCodeAt(0) === 87 /* 'W' */) {
        if (++warmReceived === warmTotal) warmDone();
        continue;
      }
      const s1 = body.indexOf(' ');
      const s2 = body.indexOf(' ', s1 + 1);
      const s = Number(body.slice(s1 + 1, s2));
      const seq = Number(body.slice(s2 + 1));
      if (!(s >= 0 && s < S && seq >= 0 && seq < M && s1 > 0 && s2 > s1) || fastAttr(tag, ' from=') !== fromJid[s]) {
        c.foreign++;
        if (c.logged++ < MUC_LOG_LIMIT) info(`muc: foreign message for ${o.nick}: ${buf.slice(start, pos).slice(0, 500)}`);
        continue;
      }
      const k = o.index * S + s;
      const bit = k * M + seq;
      const mask = 1 << (bit & 7);
      if (c.seen[bit >> 3]! & mask) {
        c.duplicates++;
        continue;
      }
      c.seen[bit >> 3]! |= mask;
      if (seq !== c.expect[k]) c.outOfOrder++;
      c.expect[k] = seq + 1;
      c.latencies[c.delivered++] = now - Number(body.slice(0, s1));
      got++;
      if (s === o.index) {
        o.reflected++;
        own = true;
      }
    }
    o.pending = pos === 0 ? buf : buf.slice(pos);
    if (got > 0) {
      lastProgress = now;
      if (own && rate === 0) pump(o);
      if (c.delivered === c.expected && tEnd === 0) {
        tEnd = now;
        finish();
      }
    }
  };
  for (const o of occupants) {
    // Whatever the setup reader has not handed out yet is the start of the next stanza.
    o.pending = o.reader.rest();
    o.onData = onMessages;
  }
  giveUp = (why: string): void => {
    if (tEnd !== 0) return;
    info(`muc: ${why}`);
    tEnd = performance.now();
    finish();
    warmDone();
  };

  // Untimed warm-up: WARMUP_MESSAGES from every sender at once, so that the room's message
  // path is compiled on both sides before anything is measured.
  warmTotal = S * WARMUP_MESSAGES * n;
  const warmed = new Promise<void>((r) => (warmDone = r));
  for (const p of senders) {
    let out = '';
    for (let k = 0; k < WARMUP_MESSAGES; k++) out += `${p.head}w${k}'><body>W ${p.index} ${k}</body></message>`;
    p.session.socket.write(out);
  }
  // Given up after STALL_MS without a new delivery.
  let lastWarm = 0;
  let lastWarmAt = performance.now();
  const warmWatch = setInterval(() => {
    const now = performance.now();
    if (warmReceived !== lastWarm) {
      lastWarm = warmReceived;
      lastWarmAt = now;
    } else if (now - lastWarmAt > STALL_MS) warmDone();
  }, 50);
  await warmed;
  clearInterval(warmWatch);
  if (warmReceived < warmTotal || closed) {
    emit({ scenario: 'muc', tls: O.encrypted, error: `warm-up: ${warmReceived} of ${warmTotal} deliveries (${S} senders × ${WARMUP_MESSAGES} × ${n} occupants)` });
    await closeAll(li.sessions);
    await server.waitIdle();
    return false;
  }

  // -- Measured steps: one per rate.

  const sweep = new Sweep('muc', REF_RATE, info);
  for (const r of O.mucRates) {
    stepNo++;
    rate = r;
    M = mucMessagesPerSender(r);
    c = mucCounts(M, n, S);
    for (const p of senders) {
      p.sent = 0;
      p.reflected = 0;
    }
    const finished = new Promise<void>((res) => (finish = res));
    tEnd = 0;
    const c0 = await cpuSnapshot(server);
    const t0 = performance.now();
    lastProgress = t0;
    const make = (seconds: number, serverNow: ServerStats | null, extra: Result): Result => {
      const sent = senders.reduce((a, p) => a + p.sent, 0);
      const cpu = cpuFigures(c0, seconds, c.delivered, serverNow);
      return {
        scenario: 'muc',
        transport: O.transport,
        tls: O.encrypted,
        step: stepNo,
        occupants: n,
        senders: S,
        messages_per_sender: M,
        // Offered room messages/s (all senders together); null: as fast as the window allows.
        rate: r === 0 ? null : r,
        window: r === 0 ? WINDOW : null,
        send_lag_max_ms: pacer === null ? null : round(pacer.sendLagMax),
        sent,
        deliveries_expected: sent * n,
        delivered: c.delivered,
        lost: sent * n - c.delivered,
        duplicates: c.duplicates,
        out_of_order: c.outOfOrder,
        foreign: c.foreign,
        unexpected: c.unexpected,
        errors: c.errors,
        seconds: round(seconds, 3),
        // Room messages: sent / time from the first send to the last delivery.
        messages_per_second: round(sent / seconds, 1),
        // Deliveries (one per message per occupant, the sender's own included) per second.
        per_second: round(c.delivered / seconds, 0),
        ...latencyFigures(Float64Array.from(c.latencies.subarray(0, c.delivered))),
        ...cpu,
        server_us_per_message: sent > 0 && typeof cpu.server_cpu_ms === 'number' ? round((1000 * cpu.server_cpu_ms) / sent, 1) : null,
        ...extra,
      };
    };
    setPartial((s) => make((performance.now() - t0) / 1000, s, { partial: true }));

    let pacer: Pacer | null = null;
    if (r === 0) {
      for (const p of senders) pump(p);
    } else {
      // Each sender is due r/S messages a second, staggered so that the room receives one every 1/r s.
      pacer = paceSenders(senders, M, (1000 * S) / r, t0, `${stepNo}-`);
    }
    const watchdog = setInterval(() => {
      const idle = performance.now() - lastProgress;
      const allSent = senders.every((p) => p.sent >= M);
      if (idle > STALL_MS && (allSent || r === 0)) giveUp?.(`no delivery for ${STALL_MS / 1000} s; giving up on the rest`);
    }, 250);
    if (closed) giveUp?.(closed);
    await finished;
    pacer?.stop();
    clearInterval(watchdog);
    const seconds = (tEnd - t0) / 1000;
    const s1 = await server.stats();
    setPartial(null);
    // Whatever is left unread at the end of a step is stray input too.
    for (const o of occupants) {
      if (o.pending.includes('<')) stray(o, o.pending);
      o.pending = '';
    }
    const res = make(seconds, s1, O.mucSweep ? { p99_limit_ms: P99_LIMIT_MS } : {});
    emit(res);
    const clean = res.lost === 0 && c.duplicates === 0 && c.outOfOrder === 0 && c.foreign === 0 && c.errors === 0 && c.unexpected === 0;
    ok = ok && clean;
    if (closed) break;
    if (O.mucSweep ? !sweep.step(res, clean) : !clean) break;
  }
  if (O.mucSweep) {
    emit({ scenario: 'muc-sweep', transport: O.transport, tls: O.encrypted, occupants: n, senders: S, ...sweep.summary(O.mucRates) });
  }
  await closeAll(li.sessions);
  await server.waitIdle();
  return ok;
}
