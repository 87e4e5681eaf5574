/**
 * The login scenario: N logins of N distinct accounts, K in flight, each the whole
 * sequence of {@link login} (connect → [STARTTLS →] SCRAM → bind → roster get → initial
 * presence → ping result). Figures: logins/s and the latency of one whole sequence.
 *
 * The logins are made by this process (`--generator node`, bench/lib/xmpp.ts) or by the Go
 * generator (`--generator go`, bench/lib/gogen.ts: the same sequence in a separate process,
 * whose CPU time is then the line's generator_* figures).
 */
import { GoGenerator } from './gogen.ts';
import { ACCOUNT_PREFIX, O, PASSWORD, account } from './options.ts';
import { emit, info, latencyFigures, round, setPartial, type Result } from './report.ts';
import * as scram from './scram.ts';
import { cpuFigures, cpuSnapshot, type ProcessCpu, type Server, type ServerStats } from './server.ts';
import { closeAll, runLogins, type Bound } from './xmpp.ts';

type Progress = (done: number, latencies: Float64Array, errors: number) => void;

/** What the scenario needs of a generator: the logins of one phase, closing them, and its CPU time when it is another process. */
interface LoginDriver {
  /** `n` logins of accounts 0 … n-1, resources `<phase><i>`; the sessions stay open until close(). */
  run(phase: string, progress?: Progress): Promise<{ latencies: Float64Array; errors: string[]; errorCount: number; open: number; cpu: ProcessCpu | null }>;
  close(): Promise<void>;
  /** PBKDF2 derivations so far, and the last SCRAM iteration count seen. */
  pbkdf2(): number;
  iterations(): number | null;
  /** The generator's CPU time so far (ms), or null when it is this process (cpuFigures reads its own); run() gives it as of the run's end. */
  cpu(): Promise<ProcessCpu | null>;
  /** The same, as of the last progress report (for a partial line; synchronous). */
  lastCpu(): ProcessCpu | null;
  exit(): Promise<void>;
}

function nodeDriver(): LoginDriver {
  let sessions: Bound[] = [];
  return {
    run: async (phase, progress) => {
      const r = await runLogins(O.logins, O.concurrency, account, phase, progress);
      sessions = r.sessions;
      return { latencies: r.latencies, errors: r.errors, errorCount: r.errors.length, open: r.sessions.length, cpu: null };
    },
    close: async () => {
      await closeAll(sessions);
      sessions = [];
    },
    pbkdf2: () => scram.pbkdf2Runs,
    iterations: () => scram.lastIterations,
    cpu: async () => null,
    lastCpu: () => null,
    exit: async () => {},
  };
}

function goDriver(server: Server): LoginDriver {
  const gen = GoGenerator.start({
    host: server.host,
    port: server.port,
    domain: server.domain,
    tls: O.tls,
    mechanism: O.mechanism,
    userPrefix: ACCOUNT_PREFIX,
    password: PASSWORD,
    concurrency: O.concurrency,
    timeoutS: 30,
    pin: server.pinned,
  });
  info(`login: the Go generator makes the logins (pid ${gen.pid}, GOMAXPROCS=1${server.pinned ? ', core 1' : ''})`);
  let pbkdf2 = 0;
  let iterations: number | null = null;
  return {
    run: async (phase, progress) => {
      const r = await gen.run(O.logins, phase, 0, progress);
      pbkdf2 += r.pbkdf2;
      iterations = r.iterations ?? iterations;
      return { latencies: r.latencies, errors: r.errors, errorCount: r.errorCount, open: r.done, cpu: r.cpu };
    },
    close: async () => void (await gen.close()),
    pbkdf2: () => pbkdf2,
    iterations: () => iterations,
    cpu: () => gen.cpu(),
    lastCpu: () => gen.lastCpu,
    exit: () => gen.exit(),
  };
}

export async function loginScenario(server: Server): Promise<boolean> {
  let driver: LoginDriver;
  try {
    driver = O.generator === 'go' ? goDriver(server) : nodeDriver();
  } catch (e) {
    emit({ scenario: 'login', tls: O.encrypted, generator: O.generator, error: (e as Error).message });
    return false;
  }
  try {
    return await measure(server, driver);
  } finally {
    await driver.exit();
  }
}

async function measure(server: Server, driver: LoginDriver): Promise<boolean> {
  const n = O.logins;
  const scenario = 'login';
  // Untimed warm-up: one login per account derives each account's SCRAM keys once (PBKDF2
  // on the generator, kept for the measurement) and warms both sides up.
  const w0 = performance.now();
  const warm = await driver.run('w');
  await driver.close();
  await server.waitIdle();
  if (warm.errorCount > 0) {
    emit({ scenario, tls: O.encrypted, generator: O.generator, error: `warm-up: ${warm.errorCount} logins failed, first: ${warm.errors[0]}` });
    return false;
  }
  info(`login warm-up: ${n} logins in ${round(performance.now() - w0, 0)} ms (untimed)`);

  // The measurement: O.loginPasses passes of the same logins, the sessions closed between
  // them. With more than one pass, each is a `login-pass` line and the `login` line is the
  // pass with the median logins/s (with every pass's figures in pass_*), so that a few
  // seconds of a slow machine decide one pass rather than the figure.
  const passes: Result[] = [];
  for (let k = 1; k <= O.loginPasses; k++) {
    const r = await pass(server, driver, k);
    if (O.loginPasses > 1) emit({ ...r, scenario: 'login-pass' });
    passes.push(r);
    if (Number(r.errors) > 0) break;
  }
  if (O.loginPasses === 1 || passes.length < O.loginPasses) {
    emit(passes[passes.length - 1]!);
  } else {
    const sorted = [...passes].sort((a, b) => Number(a.per_second) - Number(b.per_second));
    const median = sorted[(sorted.length - 1) >> 1]!;
    emit({
      ...median,
      passes: passes.length,
      pass_per_second: passes.map((p) => p.per_second as number),
      pass_server_us_per_op: passes.map((p) => (p.server_us_per_op ?? null) as number | null),
      pass_generator_us_per_op: passes.map((p) => (p.generator_us_per_op ?? null) as number | null),
    });
  }
  return passes.every((p) => Number(p.errors) === 0);
}

/** A login line: the scenario's fields, from one pass's logins, latencies (ms), errors and duration (s), then `extra`. */
function loginLine(driver: LoginDriver, done: number, lat: Float64Array, errors: number, seconds: number, extra: Result): Result {
  return {
    scenario: 'login',
    transport: O.transport,
    tls: O.encrypted,
    mechanism: O.mechanism,
    iterations: driver.iterations(),
    steps: 'connect,starttls,sasl,bind,roster,presence,ping',
    generator: O.generator,
    logins: done,
    accounts: O.logins,
    errors,
    concurrency: O.concurrency,
    seconds: round(seconds, 3),
    per_second: round(done / seconds, 1),
    ...latencyFigures(Float64Array.from(lat)),
    ...extra,
  };
}

/** One timed pass of the logins (accounts 0 … n-1, resources `l<k>-<i>`); closes them afterwards. */
async function pass(server: Server, driver: LoginDriver, k: number): Promise<Result> {
  const mem0 = await server.memory();
  const pbkdf0 = driver.pbkdf2();
  const g0 = await driver.cpu();
  const c0 = await cpuSnapshot(server);
  const t0 = performance.now();
  let snapshot: { done: number; latencies: Float64Array; errors: number } = { done: 0, latencies: new Float64Array(0), errors: 0 };
  /** The external generator's CPU time since g0 (undefined for this process). */
  const genCpu = (now: ProcessCpu | null): ProcessCpu | undefined =>
    g0 === null ? undefined : now ? { userMs: now.userMs - g0.userMs, sysMs: now.sysMs - g0.sysMs } : { userMs: Number.NaN, sysMs: Number.NaN };
  const make = (done: number, lat: Float64Array, errors: number, seconds: number, serverNow: ServerStats | null, generatorCpu: ProcessCpu | undefined, extra: Result): Result =>
    loginLine(driver, done, lat, errors, seconds, {
      // PBKDF2 derivations the generator had to run during the measurement (0 unless the
      // server draws a new salt per login).
      generator_pbkdf2: driver.pbkdf2() - pbkdf0,
      ...cpuFigures(c0, seconds, done, serverNow, generatorCpu),
      ...(O.loginPasses > 1 ? { pass: k } : {}),
      ...extra,
    });
  setPartial((s) =>
    make(snapshot.done, snapshot.latencies.subarray(0, snapshot.done), snapshot.errors, (performance.now() - t0) / 1000, s, genCpu(driver.lastCpu()), {
      partial: true,
    }),
  );
  const phase = O.loginPasses > 1 ? `l${k}-` : 'l';
  const r = await driver.run(phase, (done, latencies, errors) => {
    snapshot = { done, latencies, errors };
  });
  const seconds = (performance.now() - t0) / 1000;
  const s1 = await server.stats();
  setPartial(null);
  // What each open session costs the server, with all of them open (the child: after a full GC).
  const mem1 = await server.memory();
  const open = r.open;
  const perSession = (a: number | null, b: number | null): number | null => (a !== null && b !== null && open > 0 ? round((b - a) / open, 1) : null);
  const line = make(r.latencies.length, r.latencies, r.errorCount, seconds, s1, genCpu(r.cpu), {
    server_heap_kb_per_session: perSession(mem0.heapKb, mem1.heapKb),
    server_rss_kb_per_session: perSession(mem0.rssKb, mem1.rssKb),
  });
  if (r.errorCount > 0) info(`login${O.loginPasses > 1 ? ` pass ${k}` : ''}: ${r.errorCount} failed, first: ${r.errors[0]}`);
  await driver.close();
  await server.waitIdle();
  return line;
}
