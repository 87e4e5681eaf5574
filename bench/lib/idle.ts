/**
 * The idle scenario: the server's resident memory with 0, N1, N2 … authenticated idle
 * sessions (each the whole login: TLS unless --no-tls, SCRAM, bind, roster get, initial
 * presence, ping), one account per session. Sessions are added step by step, opened
 * --idle-batch at a time with --concurrency logins in flight; after each step the server
 * gets --idle-settle seconds to settle (the Parley child also a full GC) before its VmRSS is
 * read. Figures per step: RSS, and KB per session relative to the first step.
 */
import { O, account } from './options.ts';
import { emit, info, round, sleep } from './report.ts';
import { cpuFigures, cpuSnapshot, procRssKb, type Server } from './server.ts';
import { closeAll, runLogins, type Bound } from './xmpp.ts';

export async function idleScenario(server: Server): Promise<boolean> {
  const sessions: Bound[] = [];
  let base: { sessions: number; rssKb: number | null; heapKb: number | null } | null = null;
  /** Bytes received on idle sessions after their login (should stay near 0). */
  let received = 0;
  let dropped = 0;
  let ok = true;
  let stepNo = 0;
  for (const count of O.idle) {
    stepNo++;
    const add = count - sessions.length;
    const c0 = await cpuSnapshot(server);
    const t0 = performance.now();
    let errors: string[] = [];
    while (sessions.length < count && errors.length === 0) {
      const batch = Math.min(O.idleBatch, count - sessions.length);
      const r = await runLogins(batch, O.concurrency, account, 'i', undefined, sessions.length);
      for (const b of r.sessions) {
        b.socket.on('data', (d: Buffer) => (received += d.length));
        b.socket.on('close', () => dropped++);
        sessions.push(b);
      }
      errors = r.errors;
      if (count > O.idleBatch) info(`idle: ${sessions.length} of ${count} sessions open`);
    }
    const openSeconds = (performance.now() - t0) / 1000;
    const s1 = await server.stats();
    const cpu = cpuFigures(c0, openSeconds, add, s1);
    if (errors.length > 0) {
      emit({ scenario: 'idle', tls: O.encrypted, step: stepNo, sessions: sessions.length, error: `${errors.length} logins failed, first: ${errors[0]}` });
      ok = false;
      break;
    }
    // Settle, reading the resident set every 250 ms: rss_min_kb/rss_max_kb show whether it was still moving.
    const samples: number[] = [];
    const settleEnd = performance.now() + O.idleSettle * 1000;
    while (performance.now() < settleEnd) {
      await sleep(Math.min(250, Math.max(0, settleEnd - performance.now())));
      const m = server.pid === null ? null : procRssKb(server.pid);
      if (m !== null) samples.push(m);
    }
    const mem = await server.memory();
    if (mem.rssKb !== null) samples.push(mem.rssKb);
    base ??= { sessions: sessions.length, rssKb: mem.rssKb, heapKb: mem.heapKb };
    const n = sessions.length - base.sessions;
    const per = (now: number | null, b: number | null): number | null => (n > 0 && now !== null && b !== null ? round((now - b) / n, 1) : null);
    emit({
      scenario: 'idle',
      transport: O.transport,
      tls: O.encrypted,
      step: stepNo,
      sessions: sessions.length,
      opened: add,
      open_seconds: round(openSeconds, 3),
      opened_per_second: add > 0 ? round(add / openSeconds, 1) : null,
      settle_s: O.idleSettle,
      rss_kb: mem.rssKb,
      rss_min_kb: samples.length ? Math.min(...samples) : null,
      rss_max_kb: samples.length ? Math.max(...samples) : null,
      heap_kb: mem.heapKb,
      base_sessions: base.sessions,
      base_rss_kb: base.rssKb,
      // (RSS now − RSS at the first step) / sessions added since.
      kb_per_session: per(mem.rssKb, base.rssKb),
      heap_kb_per_session: per(mem.heapKb, base.heapKb),
      received_bytes: received,
      dropped,
      // CPU while this step's sessions were opened (per login).
      ...cpu,
    });
    if (dropped > 0) {
      info(`idle: the server closed ${dropped} idle sessions`);
      ok = false;
      break;
    }
  }
  await closeAll(sessions);
  await server.waitIdle(30_000);
  return ok;
}
