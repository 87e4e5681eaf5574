/**
 * The login scenario: N logins of N distinct accounts, K in flight, each the whole
 * sequence of {@link login} (connect → [STARTTLS →] SCRAM → bind → roster get → initial
 * presence → ping result). Figures: logins/s and the latency of one whole sequence.
 */
import { O, account } from './options.ts';
import { emit, info, latencyFigures, round, setPartial, type Result } from './report.ts';
import * as scram from './scram.ts';
import { cpuFigures, cpuSnapshot, type Server, type ServerStats } from './server.ts';
import { closeAll, runLogins } from './xmpp.ts';

export async function loginScenario(server: Server): Promise<boolean> {
  const n = O.logins;
  const scenario = 'login';
  // Untimed warm-up: one login per account derives each account's SCRAM keys once (PBKDF2
  // on the generator, kept for the measurement) and warms both sides up.
  const w0 = performance.now();
  const warm = await runLogins(n, O.concurrency, account, 'w');
  await closeAll(warm.sessions);
  await server.waitIdle();
  if (warm.errors.length > 0) {
    emit({ scenario, tls: O.encrypted, error: `warm-up: ${warm.errors.length} logins failed, first: ${warm.errors[0]}` });
    return false;
  }
  info(`login warm-up: ${n} logins in ${round(performance.now() - w0, 0)} ms (untimed)`);

  const mem0 = await server.memory();
  const pbkdf0 = scram.pbkdf2Runs;
  const c0 = await cpuSnapshot(server);
  const t0 = performance.now();
  let snapshot: { done: number; latencies: Float64Array; errors: number } = { done: 0, latencies: new Float64Array(0), errors: 0 };
  const make = (done: number, lat: Float64Array, errors: number, seconds: number, serverNow: ServerStats | null, extra: Result): Result => ({
    scenario,
    transport: O.transport,
    tls: O.encrypted,
    mechanism: O.mechanism,
    iterations: scram.lastIterations,
    steps: 'connect,starttls,sasl,bind,roster,presence,ping',
    logins: done,
    accounts: n,
    errors,
    concurrency: O.concurrency,
    seconds: round(seconds, 3),
    per_second: round(done / seconds, 1),
    ...latencyFigures(Float64Array.from(lat)),
    // PBKDF2 derivations the generator had to run during the measurement (0 unless the
    // server draws a new salt per login).
    generator_pbkdf2: scram.pbkdf2Runs - pbkdf0,
    ...cpuFigures(c0, seconds, done, serverNow),
    ...extra,
  });
  setPartial((s) => make(snapshot.done, snapshot.latencies.subarray(0, snapshot.done), snapshot.errors, (performance.now() - t0) / 1000, s, { partial: true }));
  const r = await runLogins(n, O.concurrency, account, 'l', (done, latencies, errors) => {
    snapshot = { done, latencies, errors };
  });
  const seconds = (performance.now() - t0) / 1000;
  const s1 = await server.stats();
  setPartial(null);
  // What each open session costs the server, with all of them open (the child: after a full GC).
  const mem1 = await server.memory();
  const open = r.sessions.length;
  const perSession = (a: number | null, b: number | null): number | null => (a !== null && b !== null && open > 0 ? round((b - a) / open, 1) : null);
  emit(
    make(r.latencies.length, r.latencies, r.errors.length, seconds, s1, {
      server_heap_kb_per_session: perSession(mem0.heapKb, mem1.heapKb),
      server_rss_kb_per_session: perSession(mem0.rssKb, mem1.rssKb),
    }),
  );
  if (r.errors.length > 0) info(`login: ${r.errors.length} failed, first: ${r.errors[0]}`);
  await closeAll(r.sessions);
  await server.waitIdle();
  return r.errors.length === 0;
}
