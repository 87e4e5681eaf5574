/**
 * Parley load benchmark (loopback only).
 *
 *   npm run bench -- [--logins 500] [--concurrency 20] [--pairs 50] [--messages-per-sender 200]
 *                    [--rate 0] [--window 50] [--transport tcp|ws|wss]
 *                    [--muc-occupants 0] [--muc-senders 10] [--muc-messages 200]
 *                    [--muc-rate 0 | --muc-rates R1,R2,…] [--muc-duration 0]
 *                    [--pin] [--timeout 120] [--profile-server] [--server-node-arg <node option>]…
 *
 * Starts the server in a child process (bench/server-child.ts, its own event loop; with
 * `--pin` on core 0 and this generator on core 1), then runs up to three scenarios against
 * 127.0.0.1:
 *
 *  1. login    — N logins (connect → STARTTLS → SCRAM-SHA-1 at the server's default
 *                iteration count → stream restart → bind), K in flight; logins/s and the
 *                latency of one whole login (connect to bind result), p50/p99. The
 *                sessions stay open until the scenario ends (then they are closed and
 *                the server is given time to let go of them, untimed).
 *  2. messages — P pairs of bound sessions; both members of a pair send M chat messages to
 *                the other's full JID. Each body carries the send time; the receiver
 *                computes the one-way latency and counts, so loss, reordering and foreign
 *                messages are detected. `--rate 0`: as fast as possible with at most
 *                `--window` messages in flight per sender; `--rate R`: R messages/s per
 *                sender, latency measured from the scheduled send time (no coordinated
 *                omission).
 *  3. muc      — (with `--muc-occupants N`) multi-user chat, XEP-0045: N sessions join
 *                one room `bench@conference.<domain>` (the first creates it and accepts
 *                the default configuration, an instant room; the others join a few at a
 *                time; `muc-join` line: joins/s, join latency, presences received against
 *                the N² expected). Then the first S occupants send M groupchat messages
 *                each; the room fans every message out to all N occupants, the sender
 *                included. Each body carries the send time, the sender and a sequence
 *                number; every occupant counts per sender, so loss, duplication and
 *                reordering are detected. `--muc-rate 0`: as fast as possible with
 *                `--window` messages per sender in flight (from send until the sender
 *                sees its own message reflected); `--muc-rate R`: R room messages/s over
 *                all senders, from the scheduled send times; `--muc-rates`: one step
 *                (one `muc` line) per rate, then a `muc-sweep` line with the highest rate
 *                up to which every step's p99 stayed under 100 ms. Figures: room
 *                messages/s, deliveries/s, delivery latency p50/p99/max.
 *
 * Output: one JSON line per scenario (per step for muc) on stdout, then a human summary on
 * stderr. Every figure is printed with the CPU time this generator used (process.cpuUsage,
 * user+system, all threads), the server child's, their event-loop utilisation and the CPU
 * used by anything else on the machine, so one can see which side was saturated and
 * whether the run was disturbed.
 * Exit status: 0 on success; 1 when a login or a room join failed or a message was lost
 * (or duplicated, reordered, bounced); 2 on the hard timeout (after reporting what was
 * measured so far).
 *
 * The generator is kept cheap on purpose: raw node:net/node:tls sockets with one shared
 * client TLS context, stanzas built as strings, plain string scanning of the server's
 * replies instead of an XML parser (the server's output is known; anything unexpected
 * fails loudly), writes batched per event, and ScramClient with `cacheSaltedPassword` so
 * PBKDF2 runs once per account (in an untimed warm-up) and never during the measurement.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import { NS, ScramClient } from '@parley/xmpp';
import type { ChildMessage, ParentMessage } from './server-child.ts';

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

const HELP = `Usage: npm run bench -- [options]

  --logins N               logins in the login scenario (default 500, at most 15000; 0 skips it)
  --concurrency K          logins in flight (default 20)
  --pairs P                pairs of sessions in the message scenario (default 50; 0 skips it)
  --messages-per-sender M  messages each session sends to its partner (default 200)
  --rate R                 messages/s per sender; 0 = as fast as possible (default 0)
  --window W               with --rate 0 (or --muc-rate 0), messages in flight per sender
                           (default 50)
  --transport T            tcp (STARTTLS, default), ws (WebSocket, RFC 7395, plain HTTP on
                           loopback) or wss (WebSocket over HTTPS)
  --muc-occupants N        occupants of one multi-user chat room (XEP-0045) in the muc
                           scenario (default 0: skipped; e.g. 100)
  --muc-senders S          the first S occupants send to the room (default 10)
  --muc-messages M         messages each sender sends per step (default 200)
  --muc-rate R             room messages/s in total across the senders; 0 = as fast as
                           possible with --window messages in flight per sender (default 0)
  --muc-rates R1,R2,…      a sweep: one step per rate (increasing); reports the highest rate
                           up to which every step had p99 < 100 ms (overrides --muc-rate;
                           stops after two steps in a row over 100 ms or at the first loss)
  --muc-duration T         with a rate: each step sends for T seconds instead of
                           --muc-messages per sender (default 0: use --muc-messages)
  --pin                    server on core 0, generator on core 1 (needs taskset, 2+ cores)
  --timeout S              hard limit for the whole run, seconds (default 120)
  --profile-server         run the server child with --cpu-prof (profile in bench/profiles/)
  --server-node-arg A      extra node option for the server child (repeatable), e.g. --trace-gc
  --help`;

const { values: opt } = parseArgs({
  options: {
    logins: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '20' },
    pairs: { type: 'string', default: '50' },
    'messages-per-sender': { type: 'string', default: '200' },
    rate: { type: 'string', default: '0' },
    window: { type: 'string', default: '50' },
    transport: { type: 'string', default: 'tcp' },
    'muc-occupants': { type: 'string', default: '0' },
    'muc-senders': { type: 'string', default: '10' },
    'muc-messages': { type: 'string', default: '200' },
    'muc-rate': { type: 'string', default: '0' },
    'muc-rates': { type: 'string', default: '' },
    'muc-duration': { type: 'string', default: '0' },
    pin: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '120' },
    'profile-server': { type: 'boolean', default: false },
    'server-node-arg': { type: 'string', multiple: true, default: [] },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (opt.help) {
  console.log(HELP);
  process.exit(0);
}

function intOption(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`--${name}: expected an integer from ${min} to ${max}, got '${value}'`);
    process.exit(64);
  }
  return n;
}

// Login sessions stay open until the scenario ends: keep them under the open-files limit.
const LOGINS = intOption('logins', opt.logins, 0, 15_000);
const CONCURRENCY = intOption('concurrency', opt.concurrency, 1, 5_000);
const PAIRS = intOption('pairs', opt.pairs, 0, 5_000);
const MESSAGES = intOption('messages-per-sender', opt['messages-per-sender'], 1, 1_000_000);
const RATE = intOption('rate', opt.rate, 0, 1_000_000);
const WINDOW = intOption('window', opt.window, 1, 100_000);
const TIMEOUT_S = intOption('timeout', opt.timeout, 1, 3_600);
if (!['tcp', 'ws', 'wss'].includes(opt.transport)) {
  console.error(`--transport: expected tcp, ws or wss, got '${opt.transport}'`);
  process.exit(64);
}
const TRANSPORT = opt.transport as 'tcp' | 'ws' | 'wss';
const MUC_OCCUPANTS = intOption('muc-occupants', opt['muc-occupants'], 0, 5_000);
const MUC_SENDERS = intOption('muc-senders', opt['muc-senders'], 1, 5_000);
const MUC_MESSAGES = intOption('muc-messages', opt['muc-messages'], 1, 1_000_000);
const MUC_DURATION = Number(opt['muc-duration']);
if (!(MUC_DURATION >= 0 && MUC_DURATION <= 3_600)) {
  console.error(`--muc-duration: expected seconds from 0 to 3600, got '${opt['muc-duration']}'`);
  process.exit(64);
}
/** The room message rates (total, messages/s) of the muc steps: one step per rate; 0 = as fast as the window allows. */
const MUC_RATES =
  opt['muc-rates'] === ''
    ? [intOption('muc-rate', opt['muc-rate'], 0, 1_000_000)]
    : opt['muc-rates'].split(',').map((r) => intOption('muc-rates', r.trim(), 1, 1_000_000));
/** With --muc-rates: a step passes with p99 under this (ms) and nothing lost. */
const MUC_P99_LIMIT_MS = 100;
if (MUC_OCCUPANTS > 0) {
  if (MUC_SENDERS > MUC_OCCUPANTS) {
    console.error(`--muc-senders: at most --muc-occupants (${MUC_OCCUPANTS}), got ${MUC_SENDERS}`);
    process.exit(64);
  }
  // Every delivery's latency is kept (8 bytes each) for exact percentiles.
  const deliveries = Math.max(...MUC_RATES.map((r) => mucMessagesPerSender(r))) * MUC_SENDERS * MUC_OCCUPANTS;
  if (deliveries > 25_000_000) {
    console.error(`muc: ${deliveries} deliveries per step (messages × senders × occupants) is over the 25 000 000 this generator keeps; send fewer`);
    process.exit(64);
  }
}
/** Messages per sender in a muc step at room rate `rate`: --muc-messages, or --muc-duration seconds' worth. */
function mucMessagesPerSender(rate: number): number {
  return MUC_DURATION > 0 && rate > 0 ? Math.max(1, Math.ceil((rate * MUC_DURATION) / MUC_SENDERS)) : MUC_MESSAGES;
}
const PASSWORD = 'bench-password';
/** Untimed warm-up messages per sender before the message scenario is measured. */
const WARMUP_MESSAGES = 100;
/** The message scenario gives up after this long without a delivery (the rest counts as lost). */
const STALL_MS = 5000;
const HOST = '127.0.0.1';

/** Distinct accounts the login scenario cycles through (≤ the ScramClient cache of 256). */
const LOGIN_ACCOUNTS = Math.min(LOGINS, 200);
const ACCOUNTS = Math.max(LOGIN_ACCOUNTS, 2 * PAIRS, MUC_OCCUPANTS, 1);

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
/** Cores available before any pinning. */
const CORES = os.availableParallelism();
const ROOT = dirname(BENCH_DIR);

/** The code measured: `git rev-parse --short HEAD`, `+dirty` when packages/ has uncommitted changes; null outside git. */
function codeVersion(): string | null {
  try {
    const git = (...args: string[]): string => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--', 'packages') === '' ? head : `${head}+dirty`;
  } catch {
    return null;
  }
}
const COMMIT = codeVersion();

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

/** One scenario's machine-readable result (one JSON line). */
type Result = Record<string, string | number | boolean | null>;
const results: Result[] = [];
/** Reports the scenario in progress when the hard timeout fires. */
let partial: ((server: ServerStats | null) => Result) | null = null;

/** Set once abort() has reported: the scenario cut short by stopping the server reports and logs nothing more. */
let aborted = false;

function emit(r: Result): void {
  if (aborted) return;
  r.commit = COMMIT;
  results.push(r);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

function info(s: string): void {
  if (aborted) return;
  process.stderr.write(`${s}\n`);
}

/** Nearest-rank percentile of sorted values (q in 0..1). */
function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** The latency fields of a result line from sorted latencies (ms). */
function latencyFigures(sorted: Float64Array): { p50_ms: number; p99_ms: number; max_ms: number } {
  return {
    p50_ms: round(percentile(sorted, 0.5)),
    p99_ms: round(percentile(sorted, 0.99)),
    max_ms: round(sorted.length ? sorted[sorted.length - 1]! : Number.NaN),
  };
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/**
 * Busy and total CPU time of the whole machine (ms, all cores) from /proc/stat, or null
 * where there is none. The difference with this process's and the server's CPU time shows
 * what else ran (other processes, interrupt and softirq work: loopback TCP lands there).
 */
function machineCpu(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const tick = 1000 / CLOCK_TICKS;
    return { busy: (total - idle) * tick, total: total * tick };
  } catch {
    return null;
  }
}
/** USER_HZ: 100 on every Linux build that matters. */
const CLOCK_TICKS = 100;

/** What a scenario measures about CPU, from a snapshot taken at its start. */
interface CpuSnapshot {
  generator: NodeJS.CpuUsage;
  generatorElu: EventLoopUtilization;
  server: ServerStats;
  machine: { busy: number; total: number } | null;
}

async function cpuSnapshot(): Promise<CpuSnapshot> {
  const server = await childStats();
  return { generator: process.cpuUsage(), generatorElu: performance.eventLoopUtilization(), server, machine: machineCpu() };
}

/**
 * CPU figures of a scenario since `s0`, over `seconds` of wall time and `ops` operations:
 * generator and server CPU (ms, % of one core, µs per operation) and the CPU used by
 * everything else on the machine (`other_cpu_ms`; large values mean a disturbed run).
 */
function cpuFigures(s0: CpuSnapshot, seconds: number, ops: number, serverNow: ServerStats | null): Result {
  const g = process.cpuUsage(s0.generator);
  const gen = (g.user + g.system) / 1000;
  const server = serverNow ? serverNow.cpuMs - s0.server.cpuMs : Number.NaN;
  const gElu = performance.eventLoopUtilization(s0.generatorElu).utilization;
  const sActive = serverNow ? serverNow.eluActive - s0.server.eluActive : Number.NaN;
  const sIdle = serverNow ? serverNow.eluIdle - s0.server.eluIdle : Number.NaN;
  const m = machineCpu();
  const other = m && s0.machine ? m.busy - s0.machine.busy - gen - server : Number.NaN;
  const wall = seconds * 1000;
  return {
    generator_cpu_ms: round(gen, 0),
    generator_cpu_pct: round((100 * gen) / wall, 1),
    generator_sys_ms: round(g.system / 1000, 0),
    generator_us_per_op: ops > 0 ? round((1000 * gen) / ops, 1) : null,
    generator_elu: round(gElu, 3),
    server_cpu_ms: round(server, 0),
    server_cpu_pct: round((100 * server) / wall, 1),
    server_us_per_op: ops > 0 ? round((1000 * server) / ops, 1) : null,
    server_elu: round(sActive / (sActive + sIdle), 3),
    other_cpu_ms: Number.isNaN(other) ? null : round(Math.max(0, other), 0),
  };
}

// ---------------------------------------------------------------------------
// Server child
// ---------------------------------------------------------------------------

let child: ChildProcess | null = null;
/** The child's temporary data directory. */
let childDataDir: string | null = null;
/** Set once we stop the child ourselves (its exit is then expected). */
let stopping = false;
let pinned = false;
const cpuWaiters: Array<(m: Extract<ChildMessage, { type: 'cpu' }>) => void> = [];
const memWaiters: Array<(m: Extract<ChildMessage, { type: 'mem' }> | null) => void> = [];

function canPin(): boolean {
  if (CORES < 2) return false;
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function startChild(): Promise<Extract<ChildMessage, { type: 'ready' }>> {
  const nodeArgs = ['--import', 'tsx', '--expose-gc'];
  if (opt['profile-server']) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${join(BENCH_DIR, 'profiles')}`);
  nodeArgs.push(...(opt['server-node-arg'] ?? []));
  const childArgs = [...nodeArgs, join(BENCH_DIR, 'server-child.ts'), '--accounts', String(ACCOUNTS), '--password', PASSWORD];
  let cmd = process.execPath;
  let args = childArgs;
  if (opt.pin) {
    if (canPin()) {
      cmd = 'taskset';
      args = ['-c', '0', process.execPath, ...childArgs];
      // This process and all its threads (libuv pool included) on core 1.
      execFileSync('taskset', ['-a', '-c', '-p', '1', String(process.pid)], { stdio: 'ignore' });
      pinned = true;
    } else {
      info('--pin: taskset or a second core is missing; running unpinned');
    }
  }
  const c = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child = c;
  // IPC to a child that just died (EPIPE): childStats and the exit handler deal with it.
  c.on('error', (err) => info(`server child: ${err.message}`));
  return new Promise((resolve, reject) => {
    c.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') {
        childDataDir = m.dataDir;
        resolve(m);
      }
      else if (m.type === 'error') reject(new Error(`server child: ${m.message}`));
      else if (m.type === 'cpu') cpuWaiters.shift()?.(m);
      else if (m.type === 'mem') memWaiters.shift()?.(m);
    });
    c.once('exit', (code, signal) => {
      child = null;
      // The child removes its data directory when it stops; not when it was killed.
      if (childDataDir) rmSync(childDataDir, { recursive: true, force: true });
      for (const w of memWaiters.splice(0)) w(null);
      for (const w of cpuWaiters.splice(0)) {
        w({ type: 'cpu', user: Number.NaN, system: Number.NaN, elu: { idle: Number.NaN, active: Number.NaN }, sessions: -1, streams: -1 });
      }
      reject(new Error(`server child exited (${code ?? signal}) before it was ready`));
      if (!stopping) void abort(1, `the server child exited unexpectedly (${code ?? signal})`);
    });
  });
}

/** What the server child reports: CPU time (ms), event-loop active/idle time (ms), open streams and sessions. */
type ServerStats = Awaited<ReturnType<typeof childStats>>;

const NO_STATS = { cpuMs: Number.NaN, eluActive: Number.NaN, eluIdle: Number.NaN, streams: -1, sessions: -1 };

/** The server child's CPU time (user+system, ms), event-loop times and open stream/session counts; NaN/-1 once it is gone. */
function childStats(): Promise<typeof NO_STATS> {
  const c = child;
  if (!c?.connected) return Promise.resolve(NO_STATS);
  return new Promise((resolve) => {
    const waiter = (m: Extract<ChildMessage, { type: 'cpu' }>): void =>
      resolve({ cpuMs: (m.user + m.system) / 1000, eluActive: m.elu.active, eluIdle: m.elu.idle, streams: m.streams, sessions: m.sessions });
    cpuWaiters.push(waiter);
    c.send({ type: 'cpu' } satisfies ParentMessage, (err) => {
      if (!err) return;
      const i = cpuWaiters.indexOf(waiter);
      if (i >= 0) cpuWaiters.splice(i, 1);
      resolve(NO_STATS);
    });
  });
}

/** The server child's memory after a full GC (bytes), or null once it is gone. */
function childMemory(): Promise<Extract<ChildMessage, { type: 'mem' }> | null> {
  const c = child;
  if (!c?.connected) return Promise.resolve(null);
  return new Promise((resolve) => {
    memWaiters.push(resolve);
    c.send({ type: 'mem' } satisfies ParentMessage, (err) => {
      if (!err) return;
      const i = memWaiters.indexOf(resolve);
      if (i >= 0) memWaiters.splice(i, 1);
      resolve(null);
    });
  });
}

/** Asks the server child to stop (it removes its data directory); kills it after `graceMs`. */
async function stopChild(graceMs = 5000): Promise<void> {
  const c = child;
  stopping = true;
  if (!c) return;
  const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
  if (c.connected) c.send({ type: 'stop' } satisfies ParentMessage);
  const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
  child = null;
}

/** Waits until the server has no open streams left (so one scenario's teardown does not bleed into the next). */
async function waitServerIdle(ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const s = await childStats();
    if (s.streams <= 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  info('warning: the server still has open streams');
}

// ---------------------------------------------------------------------------
// Login (connect → STARTTLS → SCRAM-SHA-1 → restart → bind)
// ---------------------------------------------------------------------------

const STREAM_HEADER = (domain: string): string =>
  `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='${NS.STREAM}' version='1.0'>`;

let sharedContext: tls.SecureContext | null = null;
/** One client TLS context for all connections (tls.connect would otherwise build one per connection). */
function clientContext(): tls.SecureContext {
  return (sharedContext ??= tls.createSecureContext());
}

/** What the scenarios use of a session's connection: a TLS socket, or a WebSocket seen as one ({@link WsSocket}). */
interface BenchSocket extends EventEmitter {
  write(data: string): unknown;
  end(data: string): unknown;
  destroy(): unknown;
}

/** A bound session: its connection and full JID. */
interface Bound {
  socket: BenchSocket;
  jid: string;
}

/**
 * A bound WebSocket session behind the socket interface the scenarios use: each received
 * message is a 'data' event; a write of several stanzas is sent as one message per stanza
 * (RFC 7395 §3.3.3), the batch in one TCP write; `end()` sends `<close/>`.
 */
class WsSocket extends EventEmitter {
  private readonly ws: WebSocket;
  private readonly raw: net.Socket;

  constructor(ws: WebSocket) {
    super();
    this.ws = ws;
    this.raw = (ws as unknown as { _socket: net.Socket })._socket;
    ws.on('message', (d) => this.emit('data', d as Buffer));
    ws.on('close', () => this.emit('close'));
    ws.on('error', (e) => this.emit('error', e));
  }

  write(data: string): void {
    this.raw.cork();
    let i = 0;
    for (;;) {
      const j = data.indexOf('</message>', i);
      if (j < 0) break;
      this.ws.send(data.slice(i, j + 10));
      i = j + 10;
    }
    if (i < data.length) this.ws.send(data.slice(i));
    this.raw.uncork();
  }

  /** `</stream:stream>` on TCP; `<close/>` here (RFC 7395 §3.6). */
  end(_tcpClose: string): void {
    this.ws.send(`<close xmlns='${NS.FRAMING}'/>`);
    this.ws.close(1000);
  }

  destroy(): void {
    this.ws.terminate();
  }
}

/**
 * The same login as {@link loginTcp} over WebSocket (RFC 7395): `<open/>`, SCRAM-SHA-1,
 * `<open/>` again (the restart), bind. One element per message, so each step looks at
 * one message.
 */
function loginWs(port: number, domain: string, user: string, resource: string): Promise<Bound> {
  return new Promise((resolve, reject) => {
    type Step = 'open' | 'features-sasl' | 'challenge' | 'success' | 'open2' | 'features-bind' | 'bind' | 'done';
    let step: Step = 'open';
    let restarted = false;
    const scheme = TRANSPORT === 'wss' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${HOST}:${port}/xmpp-websocket`, ['xmpp'], { perMessageDeflate: false, rejectUnauthorized: false });
    let scram: ScramClient | null = null;
    const open = `<open xmlns='${NS.FRAMING}' to='${domain}' version='1.0'/>`;
    const inner = (s: string, name: string): string => s.slice(s.indexOf('>', s.indexOf(`<${name}`)) + 1, s.lastIndexOf(`</${name}>`));
    const fail = (why: string): void => {
      if (step === 'done') return;
      step = 'done';
      ws.terminate();
      reject(new Error(`${user}/${resource}: ${why}`));
    };
    const onMessage = (d: Buffer): void => {
      const m = d.toString('latin1');
      if (m.startsWith('<stream:error') || m.startsWith('<failure')) return fail(`refused: ${m}`);
      switch (step) {
        case 'open':
          step = restarted ? 'features-bind' : 'features-sasl';
          return;
        case 'features-sasl':
          if (!m.includes('>SCRAM-SHA-1<')) return fail(`SCRAM-SHA-1 not offered: ${m}`);
          scram = new ScramClient({ hash: 'SHA-1', username: user, password: PASSWORD, cacheSaltedPassword: true });
          step = 'challenge';
          ws.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-1'>${scram.first().toString('base64')}</auth>`);
          return;
        case 'challenge':
          step = 'success';
          scram!.final(Buffer.from(inner(m, 'challenge'), 'base64')).then(
            (final) => ws.send(`<response xmlns='${NS.SASL}'>${final.toString('base64')}</response>`),
            (e: Error) => fail(`SCRAM: ${e.message}`),
          );
          return;
        case 'success':
          try {
            scram!.verifyServerFinal(Buffer.from(inner(m, 'success'), 'base64'));
          } catch (e) {
            return fail(`server signature: ${(e as Error).message}`);
          }
          // RFC 7395 §3.7: the restart is a new <open/>.
          restarted = true;
          step = 'open';
          ws.send(open);
          return;
        case 'features-bind':
          if (!m.includes(`<bind xmlns='${NS.BIND}'`)) return fail(`no bind feature: ${m}`);
          step = 'bind';
          ws.send(`<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='${NS.BIND}'><resource>${resource}</resource></bind></iq>`);
          return;
        case 'bind': {
          const jid = m.includes("type='result'") ? inner(m, 'jid') : '';
          if (jid === '') return fail(`bind failed: ${m}`);
          step = 'done';
          ws.off('message', onMessage);
          resolve({ socket: new WsSocket(ws), jid });
          return;
        }
        default:
          return;
      }
    };
    ws.on('message', onMessage);
    ws.on('error', (e) => fail(`WebSocket: ${e.message}`));
    ws.on('close', () => fail('connection closed'));
    ws.once('open', () => ws.send(open));
  });
}

/**
 * One whole login on a new connection. Resolves with the bound session, rejects with
 * the first failure (stream error, SASL failure, close).
 *
 * The server's replies are read by plain string scanning, step by step: each step waits
 * for the end tag of the one element it expects (`</stream:features>`, `<proceed …/>`,
 * `</challenge>`, `</success>`, `</iq>`). That is all a client of this one server needs,
 * and it costs far less than an XML parser per connection; anything unexpected
 * (`<failure`, `<stream:error`, a close) fails the login with what was received.
 */
function loginTcp(port: number, domain: string, user: string, resource: string): Promise<Bound> {
  return new Promise((resolve, reject) => {
    type Step = 'features-tls' | 'proceed' | 'features-sasl' | 'challenge' | 'success' | 'features-bind' | 'bind' | 'done';
    let step: Step = 'features-tls';
    const raw = net.connect({ host: HOST, port });
    raw.setNoDelay(true);
    let socket: net.Socket = raw;
    let scram: ScramClient | null = null;
    let buf = '';
    const header = STREAM_HEADER(domain);

    const fail = (why: string): void => {
      if (step === 'done') return;
      step = 'done';
      socket.destroy();
      raw.destroy();
      reject(new Error(`${user}/${resource}: ${why}`));
    };

    /** The received text up to and including `end`, removed from the buffer; null while incomplete. */
    const take = (end: string): string | null => {
      const i = buf.indexOf(end);
      if (i < 0) return null;
      const s = buf.slice(0, i + end.length);
      buf = buf.slice(i + end.length);
      return s;
    };
    /** The character data of `<name …>data</name>` in `s`. */
    const inner = (s: string, name: string): string => {
      const open = s.indexOf(`<${name}`);
      return s.slice(s.indexOf('>', open) + 1, s.lastIndexOf(`</${name}>`));
    };

    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      if (buf.includes('<stream:error') || buf.includes('<failure')) return fail(`refused: ${buf}`);
      for (;;) {
        switch (step) {
          case 'features-tls': {
            const f = take('</stream:features>');
            if (f === null) return;
            if (!f.includes('<starttls')) return fail(`no STARTTLS offered: ${f}`);
            step = 'proceed';
            raw.write(`<starttls xmlns='${NS.TLS}'/>`);
            continue;
          }
          case 'proceed': {
            if (take(`<proceed xmlns='${NS.TLS}'/>`) === null) return;
            raw.removeListener('data', onData);
            buf = '';
            const secure = tls.connect({ socket: raw, secureContext: clientContext(), rejectUnauthorized: false, servername: domain });
            socket = secure;
            secure.on('error', (e) => fail(`TLS: ${e.message}`));
            secure.once('secureConnect', () => {
              secure.on('data', onData);
              step = 'features-sasl';
              secure.write(header);
            });
            return;
          }
          case 'features-sasl': {
            const f = take('</stream:features>');
            if (f === null) return;
            if (!f.includes('>SCRAM-SHA-1<')) return fail(`SCRAM-SHA-1 not offered: ${f}`);
            scram = new ScramClient({ hash: 'SHA-1', username: user, password: PASSWORD, cacheSaltedPassword: true });
            step = 'challenge';
            socket.write(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-1'>${scram.first().toString('base64')}</auth>`);
            continue;
          }
          case 'challenge': {
            const c = take('</challenge>');
            if (c === null) return;
            step = 'success';
            scram!.final(Buffer.from(inner(c, 'challenge'), 'base64')).then(
              (final) => socket.write(`<response xmlns='${NS.SASL}'>${final.toString('base64')}</response>`),
              (e: Error) => fail(`SCRAM: ${e.message}`),
            );
            continue;
          }
          case 'success': {
            const s = take('</success>');
            if (s === null) return;
            try {
              scram!.verifyServerFinal(Buffer.from(inner(s, 'success'), 'base64'));
            } catch (e) {
              return fail(`server signature: ${(e as Error).message}`);
            }
            // RFC 6120 §6.4.6: restart the stream.
            step = 'features-bind';
            socket.write(header);
            continue;
          }
          case 'features-bind': {
            const f = take('</stream:features>');
            if (f === null) return;
            if (!f.includes(`<bind xmlns='${NS.BIND}'`)) return fail(`no bind feature: ${f}`);
            step = 'bind';
            socket.write(`<iq type='set' id='b'><bind xmlns='${NS.BIND}'><resource>${resource}</resource></bind></iq>`);
            continue;
          }
          case 'bind': {
            const r = take('</iq>');
            if (r === null) return;
            const jid = r.includes("type='result'") ? inner(r, 'jid') : '';
            if (jid === '') return fail(`bind failed: ${r}`);
            step = 'done';
            socket.removeListener('data', onData);
            resolve({ socket, jid });
            return;
          }
          case 'done':
            return;
        }
      }
    };

    raw.on('data', onData);
    raw.on('error', (e) => fail(`socket: ${e.message}`));
    raw.on('close', () => fail('connection closed'));
    raw.once('connect', () => raw.write(header));
  });
}

/** One whole login over the chosen transport (`--transport`). */
const login = TRANSPORT === 'tcp' ? loginTcp : loginWs;

/** Closes bound sessions politely (`</stream:stream>`) and waits until the server has let go of them all. */
async function closeAll(sessions: Bound[]): Promise<void> {
  for (const s of sessions) {
    s.socket.removeAllListeners('data');
    s.socket.removeAllListeners('close');
    s.socket.on('error', () => {});
    s.socket.end('</stream:stream>');
    setTimeout(() => s.socket.destroy(), 1000).unref();
  }
  await waitServerIdle();
}

/**
 * Runs `count` logins with `concurrency` in flight, accounts `bench<i mod accounts>`,
 * resource `<prefix><i>`. Returns the sessions, per-login latencies (ms) and errors.
 */
async function runLogins(
  port: number,
  domain: string,
  count: number,
  concurrency: number,
  accounts: number,
  prefix: string,
  progress?: (done: number, latencies: Float64Array, errors: number) => void,
): Promise<{ sessions: Bound[]; latencies: Float64Array; errors: string[] }> {
  const sessions: Bound[] = [];
  const latencies = new Float64Array(count);
  const errors: string[] = [];
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      try {
        const b = await login(port, domain, `bench${i % accounts}`, `${prefix}${i}`);
        latencies[done++] = performance.now() - t0;
        sessions.push(b);
        b.socket.on('error', () => {});
      } catch (e) {
        errors.push((e as Error).message);
        // A broken setup fails every login: stop starting new ones.
        next = count;
      }
      progress?.(done, latencies, errors.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { sessions, latencies: latencies.subarray(0, done), errors };
}

async function loginScenario(port: number, domain: string, iterations: number): Promise<boolean> {
  // Untimed warm-up: one login per account fills the ScramClient cache (PBKDF2 once per
  // account and salt) and warms both sides' JIT.
  const w0 = performance.now();
  const warm = await runLogins(port, domain, LOGIN_ACCOUNTS, CONCURRENCY, LOGIN_ACCOUNTS, 'w');
  await closeAll(warm.sessions);
  if (warm.errors.length > 0) {
    emit({ scenario: 'login', error: `warm-up: ${warm.errors.length} logins failed, first: ${warm.errors[0]}` });
    return false;
  }
  info(`login warm-up: ${LOGIN_ACCOUNTS} logins in ${round(performance.now() - w0, 0)} ms (untimed)`);

  const mem0 = await childMemory();
  const c0 = await cpuSnapshot();
  const t0 = performance.now();
  let snapshot: { done: number; latencies: Float64Array; errors: number } = { done: 0, latencies: new Float64Array(0), errors: 0 };
  const make = (done: number, lat: Float64Array, errors: number, seconds: number, serverNow: ServerStats | null, extra: Result): Result => {
    const sorted = Float64Array.from(lat).sort();
    return {
      scenario: 'login',
      transport: TRANSPORT,
      mechanism: 'SCRAM-SHA-1',
      iterations,
      logins: done,
      errors,
      concurrency: CONCURRENCY,
      seconds: round(seconds, 3),
      per_second: round(done / seconds, 1),
      ...latencyFigures(sorted),
      ...cpuFigures(c0, seconds, done, serverNow),
      pinned,
      ...extra,
    };
  };
  partial = (server) => {
    const seconds = (performance.now() - t0) / 1000;
    return make(snapshot.done, snapshot.latencies.subarray(0, snapshot.done), snapshot.errors, seconds, server, { partial: true });
  };
  const r = await runLogins(port, domain, LOGINS, CONCURRENCY, LOGIN_ACCOUNTS, 'l', (done, latencies, errors) => {
    snapshot = { done, latencies, errors };
  });
  const seconds = (performance.now() - t0) / 1000;
  const s1 = await childStats();
  partial = null;
  // What each open session costs the server, measured after a full GC with all of them open.
  const mem1 = await childMemory();
  const open = r.sessions.length;
  const perSession = (a: number | undefined, b: number | undefined): number | null =>
    a !== undefined && b !== undefined && open > 0 ? round((b - a) / 1024 / open, 1) : null;
  emit(
    make(r.latencies.length, r.latencies, r.errors.length, seconds, s1, {
      server_heap_kb_per_session: perSession(mem0?.heapUsed, mem1?.heapUsed),
      server_rss_kb_per_session: perSession(mem0?.rss, mem1?.rss),
    }),
  );
  if (r.errors.length > 0) info(`login: ${r.errors.length} failed, first: ${r.errors[0]}`);
  await closeAll(r.sessions);
  return r.errors.length === 0;
}

// ---------------------------------------------------------------------------
// One-to-one messages
// ---------------------------------------------------------------------------

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

async function messageScenario(port: number, domain: string): Promise<boolean> {
  const n = 2 * PAIRS;
  const li = await runLogins(port, domain, n, CONCURRENCY, n, 'p');
  if (li.errors.length > 0) {
    emit({ scenario: 'messages', error: `${li.errors.length} logins failed, first: ${li.errors[0]}` });
    await closeAll(li.sessions);
    return false;
  }
  // runLogins finishes in any order: index the sessions by account.
  const byUser = new Map<number, Bound>();
  for (const s of li.sessions) byUser.set(Number(/^bench(\d+)@/.exec(s.jid)![1]), s);
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
      session: byUser.get(i)!,
      partner,
      head: '',
      sent: 0,
      delivered: 0,
      received: 0,
      expect: 0,
      pending: '',
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
    if (chunk.includes('<stream:error') || chunk.includes('</stream:stream>') || chunk.includes("type='error'")) {
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
    return false;
  }
  lastProgress = performance.now();

  let sendLagMax = 0;
  const c0 = await cpuSnapshot();
  const t0 = performance.now();
  const make = (seconds: number, serverNow: ServerStats | null, extra: Result): Result => {
    const sorted = Float64Array.from(latencies.subarray(0, deliveredTotal)).sort();
    const sentTotal = peers.reduce((a, p) => a + p.sent, 0);
    return {
      scenario: 'messages',
      transport: TRANSPORT,
      pairs: PAIRS,
      senders: n,
      messages_per_sender: MESSAGES,
      rate_per_sender: RATE,
      window: RATE === 0 ? WINDOW : null,
      // With --rate: the most a message was sent after its scheduled time (generator lag), ms.
      send_lag_max_ms: RATE === 0 ? null : round(sendLagMax),
      sent: sentTotal,
      delivered: deliveredTotal,
      lost: sentTotal - deliveredTotal,
      out_of_order: outOfOrder,
      foreign,
      errors: errorsSeen,
      seconds: round(seconds, 3),
      per_second: round(deliveredTotal / seconds, 0),
      ...latencyFigures(sorted),
      ...cpuFigures(c0, seconds, deliveredTotal, serverNow),
      pinned,
      ...extra,
    };
  };
  partial = (server) => make((performance.now() - t0) / 1000, server, { partial: true });

  let ticker: NodeJS.Timeout | undefined;
  if (RATE === 0) {
    for (const p of peers) pump(p);
  } else {
    // Each sender is due `RATE` messages a second from its own offset; a 1 ms ticker sends
    // what is due, stamped with the time it was due.
    const interval = 1000 / RATE;
    const offsets = peers.map((p) => (p.index / n) * interval);
    const tick = (): void => {
      const now = performance.now();
      let all = true;
      for (const p of peers) {
        if (p.sent >= MESSAGES) continue;
        all = false;
        const due = Math.min(MESSAGES, Math.floor((now - t0 - offsets[p.index]!) / interval) + 1);
        if (due <= p.sent) continue;
        let out = '';
        // How late this generator is sending (it counts in the latency, by design).
        const lag = now - (t0 + offsets[p.index]! + p.sent * interval);
        if (lag > sendLagMax) sendLagMax = lag;
        while (p.sent < due) {
          const seq = p.sent++;
          const ts = (t0 + offsets[p.index]! + seq * interval).toFixed(3);
          out += `${p.head}${seq}'><body>${ts} ${p.index} ${seq}</body></message>`;
        }
        p.session.socket.write(out);
      }
      if (all) clearInterval(ticker);
    };
    ticker = setInterval(tick, 1);
    tick();
  }
  // Nothing delivered for STALL_MS while nothing is left to send (or nothing at all): lost.
  const watchdog = setInterval(() => {
    const idle = performance.now() - lastProgress;
    const allSent = peers.every((p) => p.sent >= MESSAGES);
    if (idle > STALL_MS && (allSent || RATE === 0)) giveUp(`no delivery for ${STALL_MS / 1000} s; giving up on the rest`);
  }, 250);
  await finished;
  clearInterval(ticker);
  clearInterval(watchdog);
  const seconds = (tEnd - t0) / 1000;
  const s1 = await childStats();
  partial = null;
  const r = make(seconds, s1, {});
  emit(r);
  await closeAll(li.sessions);
  return r.lost === 0 && outOfOrder === 0 && foreign === 0 && errorsSeen === 0;
}

// ---------------------------------------------------------------------------
// Multi-user chat (XEP-0045): one room, N occupants, S senders
// ---------------------------------------------------------------------------

const NS_MUC = 'http://jabber.org/protocol/muc';
/** Room joins in flight during the join phase. */
const MUC_JOIN_CONCURRENCY = 4;
/** A setup step (room creation, its configuration, one join) fails after this long without its answer. */
const MUC_SETUP_TIMEOUT_MS = 10_000;
/** Stray input (not a groupchat message with a body) logged per phase, at most. */
const MUC_LOG_LIMIT = 5;

/**
 * Complete top-level elements at the start of `buf`, and the unfinished rest. For the
 * untimed setup phases only (simple rather than fast): an element ends at `/>` closing
 * its start tag or at the first `</name>` (stanzas do not nest in themselves here); a
 * lone end tag (`</stream:stream>`) is an element of its own.
 */
function splitStanzas(buf: string): { stanzas: string[]; rest: string } {
  const stanzas: string[] = [];
  let pos = 0;
  for (;;) {
    const lt = buf.indexOf('<', pos);
    if (lt < 0) {
      pos = buf.length;
      break;
    }
    pos = lt;
    const gt = buf.indexOf('>', lt);
    if (gt < 0) break;
    let ne = lt + 1;
    while (ne < gt && !' \t\r\n/>'.includes(buf[ne]!)) ne++;
    if (buf[lt + 1] === '/' || buf[gt - 1] === '/') {
      stanzas.push(buf.slice(lt, gt + 1));
      pos = gt + 1;
      continue;
    }
    const name = buf.slice(lt + 1, ne);
    const close = buf.indexOf(`</${name}>`, gt);
    if (close < 0) break;
    const end = close + name.length + 3;
    stanzas.push(buf.slice(lt, end));
    pos = end;
  }
  return { stanzas, rest: buf.slice(pos) };
}

/** The value of attribute `name` in the start tag of `stanza` (either quote), or null. */
function attr(stanza: string, name: string): string | null {
  const tag = stanza.slice(0, stanza.indexOf('>') + 1);
  const m = new RegExp(`\\s${name}=(['"])(.*?)\\1`).exec(tag);
  return m ? m[2]! : null;
}

/** Whether `stanza` carries `<status code='c'/>` (muc#user). */
function hasStatus(stanza: string, code: number): boolean {
  return new RegExp(`<status\\s+code=['"]${code}['"]`).test(stanza);
}

interface Occupant {
  /** Occupant i is account bench<i> with nickname u<i>; the first S are the senders. */
  index: number;
  session: Bound;
  nick: string;
  /** Unparsed tail of the input. */
  pending: string;
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

async function mucScenario(port: number, domain: string): Promise<boolean> {
  const n = MUC_OCCUPANTS;
  const S = MUC_SENDERS;
  const room = `bench@conference.${domain}`;
  const li = await runLogins(port, domain, n, CONCURRENCY, n, 'm');
  if (li.errors.length > 0) {
    emit({ scenario: 'muc-join', error: `${li.errors.length} logins failed, first: ${li.errors[0]}` });
    await closeAll(li.sessions);
    return false;
  }
  const byUser = new Map<number, Bound>();
  for (const s of li.sessions) byUser.set(Number(/^bench(\d+)@/.exec(s.jid)![1]), s);
  const occupants: Occupant[] = [];
  for (let i = 0; i < n; i++) {
    occupants.push({
      index: i,
      session: byUser.get(i)!,
      nick: `u${i}`,
      pending: '',
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
  let closed: string | null = null;
  /** Ends the step in progress early (a closed stream, a stall): what is missing by then counts as lost. */
  let giveUp: ((why: string) => void) | null = null;
  const setupNote = (o: Occupant, what: string, stanza: string): void => {
    if (setupLogged++ < MUC_LOG_LIMIT) info(`muc join: ${what} for ${o.nick} (${o.session.jid}): ${stanza.slice(0, 500)}`);
  };
  const onSetup = (o: Occupant, chunk: string): void => {
    const { stanzas, rest } = splitStanzas(o.pending + chunk);
    o.pending = rest;
    for (const st of stanzas) {
      if (st.startsWith('<presence')) {
        const type = attr(st, 'type');
        const from = attr(st, 'from');
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
  }

  const joinLatencies = new Float64Array(n);
  let joined = 0;
  const jc0 = await cpuSnapshot();
  const jt0 = performance.now();
  const joinResult = (seconds: number, serverNow: ServerStats | null, extra: Result): Result => ({
    scenario: 'muc-join',
    transport: TRANSPORT,
    room,
    occupants: n,
    joined,
    concurrency: MUC_JOIN_CONCURRENCY,
    seconds: round(seconds, 3),
    per_second: round(joined / seconds, 1),
    ...latencyFigures(Float64Array.from(joinLatencies.subarray(0, joined)).sort()),
    // Every occupant receives one available presence per occupant, its own included: n².
    presences: presencesTotal,
    presences_expected: n * n,
    subjects: occupants.reduce((a, o) => a + o.subjects, 0),
    unexpected: setupUnexpected,
    errors: setupErrors,
    ...cpuFigures(jc0, seconds, joined, serverNow),
    pinned,
    ...extra,
  });
  partial = (server) => joinResult((performance.now() - jt0) / 1000, server, { partial: true });
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
    partial = null;
    emit({ ...joinResult((performance.now() - jt0) / 1000, await childStats(), {}), error: (e as Error).message });
    await closeAll(li.sessions);
    return false;
  }
  const joinSeconds = (performance.now() - jt0) / 1000;
  const js1 = await childStats();
  // The presences of the last newcomers (and the subjects) may still be on their way.
  const settle = performance.now() + 5000;
  while ((presencesTotal < n * n || occupants.some((o) => o.subjects === 0)) && performance.now() < settle && !closed) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 100));
  partial = null;
  const jr = joinResult(joinSeconds, js1, {});
  emit(jr);
  let ok = presencesTotal === n * n && setupErrors === 0 && setupUnexpected === 0 && !closed;
  if (presencesTotal !== n * n) info(`muc join: ${presencesTotal} occupant presences received, expected ${n * n} (one per occupant per occupant)`);
  if (closed) {
    await closeAll(li.sessions);
    return false;
  }

  // -- Message phase: groupchat messages scanned as strings, like the one-to-one scenario.

  const senders = occupants.slice(0, S);
  /** `from='room/u<s>'` per sender: the reflected message must come from the sender's occupant JID. */
  const fromAttr = senders.map((o) => `from='${room}/${o.nick}'`);
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
    if (text.includes("type='error'") || text.includes('<stream:error') || text.includes('</stream:stream>')) c.errors++;
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
      if (!tag.includes("type='groupchat'")) {
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
      if (!(s >= 0 && s < S && seq >= 0 && seq < M && s1 > 0 && s2 > s1) || !tag.includes(fromAttr[s]!)) {
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
    // Whatever the setup reader left unfinished is the start of the next stanza.
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
    emit({ scenario: 'muc', error: `warm-up: ${warmReceived} of ${warmTotal} deliveries (${S} senders × ${WARMUP_MESSAGES} × ${n} occupants)` });
    await closeAll(li.sessions);
    return false;
  }

  // -- Measured steps: one per rate.

  const sweep = opt['muc-rates'] !== '';
  let best: Result | null = null;
  let overLimit = 0;
  /** The first rate whose step had p99 over the limit. */
  let firstFailed: number | null = null;
  let stepsRun = 0;
  for (const r of MUC_RATES) {
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
    let sendLagMax = 0;
    const c0 = await cpuSnapshot();
    const t0 = performance.now();
    lastProgress = t0;
    const make = (seconds: number, serverNow: ServerStats | null, extra: Result): Result => {
      const sorted = Float64Array.from(c.latencies.subarray(0, c.delivered)).sort();
      const sent = senders.reduce((a, p) => a + p.sent, 0);
      const cpu = cpuFigures(c0, seconds, c.delivered, serverNow);
      return {
        scenario: 'muc',
        transport: TRANSPORT,
        step: stepNo,
        occupants: n,
        senders: S,
        messages_per_sender: M,
        // Offered room messages/s (all senders together); null: as fast as the window allows.
        rate: r === 0 ? null : r,
        window: r === 0 ? WINDOW : null,
        send_lag_max_ms: r === 0 ? null : round(sendLagMax),
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
        ...latencyFigures(sorted),
        ...cpu,
        server_us_per_message: sent > 0 && typeof cpu.server_cpu_ms === 'number' ? round((1000 * cpu.server_cpu_ms) / sent, 1) : null,
        pinned,
        ...extra,
      };
    };
    partial = (server) => make((performance.now() - t0) / 1000, server, { partial: true });

    let ticker: NodeJS.Timeout | undefined;
    if (r === 0) {
      for (const p of senders) pump(p);
    } else {
      // Each sender is due r/S messages a second, staggered so that the room receives one
      // every 1/r s; a 1 ms ticker sends what is due, stamped with the time it was due.
      const interval = (1000 * S) / r;
      const offsets = senders.map((p) => (p.index / S) * interval);
      const tick = (): void => {
        const now = performance.now();
        let all = true;
        for (const p of senders) {
          if (p.sent >= M) continue;
          all = false;
          const due = Math.min(M, Math.floor((now - t0 - offsets[p.index]!) / interval) + 1);
          if (due <= p.sent) continue;
          const lag = now - (t0 + offsets[p.index]! + p.sent * interval);
          if (lag > sendLagMax) sendLagMax = lag;
          let out = '';
          while (p.sent < due) {
            const seq = p.sent++;
            const ts = (t0 + offsets[p.index]! + seq * interval).toFixed(3);
            out += `${p.head}${stepNo}-${seq}'><body>${ts} ${p.index} ${seq}</body></message>`;
          }
          p.session.socket.write(out);
        }
        if (all) clearInterval(ticker);
      };
      ticker = setInterval(tick, 1);
      tick();
    }
    const watchdog = setInterval(() => {
      const idle = performance.now() - lastProgress;
      const allSent = senders.every((p) => p.sent >= M);
      if (idle > STALL_MS && (allSent || r === 0)) giveUp?.(`no delivery for ${STALL_MS / 1000} s; giving up on the rest`);
    }, 250);
    if (closed) giveUp?.(closed);
    await finished;
    clearInterval(ticker);
    clearInterval(watchdog);
    const seconds = (tEnd - t0) / 1000;
    const s1 = await childStats();
    partial = null;
    // Whatever is left unread at the end of a step is stray input too.
    for (const o of occupants) {
      if (o.pending.includes('<')) stray(o, o.pending);
      o.pending = '';
    }
    const res = make(seconds, s1, sweep ? { p99_limit_ms: MUC_P99_LIMIT_MS } : {});
    emit(res);
    stepsRun++;
    const clean = res.lost === 0 && c.duplicates === 0 && c.outOfOrder === 0 && c.foreign === 0 && c.errors === 0 && c.unexpected === 0;
    ok = ok && clean;
    if (!clean || closed) break;
    if ((res.p99_ms as number) < MUC_P99_LIMIT_MS) {
      overLimit = 0;
      // The best rate is the last of the unbroken run of passing steps from the first one:
      // above the knee a step may pass by luck after one that failed.
      if (r > 0 && firstFailed === null) best = res;
    } else {
      firstFailed ??= r;
      if (sweep && ++overLimit >= 2) {
        info(`muc: two steps in a row over p99 ${MUC_P99_LIMIT_MS} ms; the sweep stops here`);
        break;
      }
    }
  }
  if (sweep) {
    emit({
      scenario: 'muc-sweep',
      transport: TRANSPORT,
      occupants: n,
      senders: S,
      rates: MUC_RATES.join(','),
      steps: stepsRun,
      p99_limit_ms: MUC_P99_LIMIT_MS,
      // The highest offered room rate such that its step and every step before it had p99
      // under the limit (a step that loses anything ends the sweep and fails the run).
      best_rate: best ? (best.rate as number) : null,
      best_messages_per_second: best ? best.messages_per_second! : null,
      best_deliveries_per_second: best ? best.per_second! : null,
      best_p99_ms: best ? best.p99_ms! : null,
      best_server_cpu_pct: best ? best.server_cpu_pct! : null,
      // The first rate over the limit (null: none), whatever passed after it.
      first_failed_rate: firstFailed,
    });
  }
  await closeAll(li.sessions);
  return ok;
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

/** A figure for the human summary: `n/a` for what was not measured. */
function fig(v: string | number | boolean | null | undefined, unit = ''): string {
  return v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v)) ? 'n/a' : `${v}${unit}`;
}

function summary(): void {
  const lines = ['', '== Parley load benchmark (127.0.0.1) =='];
  lines.push(
    `commit ${COMMIT ?? '?'}, node ${process.version}, ${CORES} cores (${os.cpus()[0]?.model ?? '?'}), ${pinned ? 'server pinned to core 0, generator to core 1' : 'unpinned'}`,
  );
  for (const r of results) {
    const part = r.partial ? ' (PARTIAL: hard timeout)' : '';
    const login = r.scenario === 'login';
    if (r.error) {
      lines.push(`${String(r.scenario).padEnd(8)} FAILED: ${r.error}`);
      continue;
    }
    if (r.scenario === 'muc-sweep') {
      lines.push(
        `muc      sweep of ${r.steps} steps (${r.rates} room msg/s): ` +
          (r.best_rate === null
            ? `the first step was already over p99 ${r.p99_limit_ms} ms (or lost messages)`
            : `highest rate with p99 < ${r.p99_limit_ms} ms at every step up to it, nothing lost: ${r.best_rate} room msg/s ` +
              `(${r.best_deliveries_per_second} deliveries/s, p99 ${r.best_p99_ms} ms, server ${r.best_server_cpu_pct} % of a core)`) +
          (r.first_failed_rate === null ? '' : `; first over the limit: ${r.first_failed_rate} room msg/s`),
      );
      continue;
    }
    if (r.scenario === 'muc-join') {
      lines.push(
        `muc join ${r.joined}/${r.occupants} occupants joined one room (${r.concurrency} in flight): ${r.per_second} joins/s, ` +
          `p50 ${fig(r.p50_ms)} ms, p99 ${fig(r.p99_ms)} ms; ${r.presences}/${r.presences_expected} occupant presences` +
          `${r.errors ? `, ${r.errors} ERRORS` : ''}${r.unexpected ? `, ${r.unexpected} unexpected stanzas` : ''}${part}`,
      );
    } else if (r.scenario === 'muc') {
      const bad = (['lost', 'duplicates', 'out_of_order', 'foreign', 'unexpected', 'errors'] as const)
        .filter((k) => r[k])
        .map((k) => `, ${r[k]} ${k.replaceAll('_', ' ').toUpperCase()}`)
        .join('');
      lines.push(
        `muc      ${r.delivered}/${r.deliveries_expected} delivered (${r.occupants} occupants, ${r.senders} senders × ${r.messages_per_sender}, ` +
          `${r.rate ? `${r.rate} room msg/s offered` : `window ${r.window}`}${bad}): ` +
          `${r.messages_per_second} room msg/s, ${r.per_second} deliveries/s, p50 ${fig(r.p50_ms)} ms, p99 ${fig(r.p99_ms)} ms, max ${fig(r.max_ms)} ms${part}`,
      );
    } else if (login) {
      lines.push(
        `login    ${r.logins} logins (${r.mechanism}, i=${r.iterations}, ${r.concurrency} in flight${r.errors ? `, ${r.errors} FAILED` : ''}): ` +
          `${r.per_second} logins/s, p50 ${fig(r.p50_ms)} ms, p99 ${fig(r.p99_ms)} ms${part}`,
      );
    } else {
      lines.push(
        `messages ${r.delivered}/${r.sent} delivered (${r.pairs} pairs × 2 senders × ${r.messages_per_sender}, ` +
          `${r.rate_per_sender ? `${r.rate_per_sender}/s per sender` : `window ${r.window}`}` +
          `${r.lost ? `, ${r.lost} LOST` : ''}${r.out_of_order ? `, ${r.out_of_order} out of order` : ''}): ` +
          `${r.per_second} msg/s, p50 ${fig(r.p50_ms)} ms, p99 ${fig(r.p99_ms)} ms${part}`,
      );
    }
    const op = login ? 'login' : r.scenario === 'muc-join' ? 'join' : r.scenario === 'muc' ? 'delivery' : 'msg';
    lines.push(
      `         ${r.seconds} s; generator CPU ${fig(r.generator_cpu_ms)} ms (${fig(r.generator_cpu_pct, ' %')} of a core, ${fig(r.generator_us_per_op)} µs/${op}); ` +
        `server CPU ${fig(r.server_cpu_ms)} ms (${fig(r.server_cpu_pct, ' %')}, ${fig(r.server_us_per_op)} µs/${op}); other CPU on the machine ${fig(r.other_cpu_ms)} ms`,
    );
  }
  process.stderr.write(`${lines.join('\n')}\n`);
}

/** Reports the scenario in progress (with the server's CPU if it answers within 500 ms), then exits. */
async function abort(code: number, why: string): Promise<never> {
  info(why);
  if (partial) {
    const report = partial;
    partial = null;
    const server = await Promise.race([childStats(), new Promise<null>((r) => setTimeout(() => r(null), 500))]);
    emit(report(server));
  }
  summary();
  aborted = true;
  await stopChild(1000);
  process.exit(code);
}

// Not unref'd: it also ends a run that hangs with nothing else pending.
setTimeout(() => void abort(2, `hard timeout after ${TIMEOUT_S} s`), TIMEOUT_S * 1000);

async function main(): Promise<number> {
  const ready = await startChild();
  info(
    `server child: port ${ready.port}, ${ready.accounts} accounts, SCRAM i=${ready.iterations}, set up in ${round(ready.setupMs, 0)} ms${pinned ? ' (pinned)' : ''}`,
  );
  let ok = true;
  const port = TRANSPORT === 'tcp' ? ready.port : TRANSPORT === 'ws' ? ready.httpPort : ready.httpsPort;
  if (LOGINS > 0) ok = (await loginScenario(port, ready.domain, ready.iterations)) && ok;
  if (PAIRS > 0) ok = (await messageScenario(port, ready.domain)) && ok;
  if (MUC_OCCUPANTS > 0) ok = (await mucScenario(port, ready.domain)) && ok;
  await stopChild();
  summary();
  if (opt['profile-server']) info(`server CPU profile written to ${join(BENCH_DIR, 'profiles')}/`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => abort(1, err instanceof Error ? (err.stack ?? err.message) : String(err)),
);
