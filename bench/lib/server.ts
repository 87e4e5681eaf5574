/**
 * The server under load: Parley in a child process (bench/server-child.ts, its own event
 * loop and, with --pin, its own core), or any XMPP server already listening (--target),
 * observed through /proc when its pid is given (--server-pid). Also the CPU figures every
 * result line carries.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { EventLoopUtilization } from 'node:perf_hooks';
import type { ChildMessage, ParentMessage } from '../server-child.ts';
import { BENCH_DIR, ROOT, info, round, sleep, type Result } from './report.ts';

/** USER_HZ, the unit of /proc/PID/stat and /proc/stat times (100 on every Linux build that matters). */
export const CLOCK_TICKS = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** Cores available before any pinning. */
export const CORES = os.availableParallelism();

/** What the server reports: CPU time (ms), event-loop active/idle time (ms; NaN when unknown), open streams and sessions (-1 when unknown). */
export interface ServerStats {
  cpuMs: number;
  eluActive: number;
  eluIdle: number;
  streams: number;
  sessions: number;
}

const NO_STATS: ServerStats = { cpuMs: Number.NaN, eluActive: Number.NaN, eluIdle: Number.NaN, streams: -1, sessions: -1 };

/** A server's resident memory (kB, /proc VmRSS) and, for the Parley child, its JS heap after a full GC (kB). */
export interface ServerMemory {
  rssKb: number | null;
  heapKb: number | null;
}

export interface Server {
  /** `parley-child` or `external`. */
  readonly kind: 'parley-child' | 'external';
  readonly host: string;
  /** The client port (STARTTLS, or plain with --no-tls). */
  readonly port: number;
  /** WebSocket ports (the child only). */
  readonly httpPort: number | null;
  readonly httpsPort: number | null;
  readonly domain: string;
  readonly pid: number | null;
  /** Whether the server runs on core 0 and this generator on core 1 (child) or this generator alone on core 1 (external). */
  readonly pinned: boolean;
  stats(): Promise<ServerStats>;
  /** Resident memory; the child first runs a full GC. */
  memory(): Promise<ServerMemory>;
  /** Waits until the server has let go of closed sessions (the child: no open stream left). */
  waitIdle(ms?: number): Promise<void>;
  stop(graceMs?: number): Promise<void>;
}

// ---------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------

/** A process's CPU time (user + system, all threads, ms) from /proc/PID/stat, or NaN. */
export function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** A process's resident set (kB) from /proc/PID/status VmRSS, or null. */
export function procRssKb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The soft limit of open files of a process (/proc/PID/limits), or null. */
export function openFilesLimit(pid: number | 'self'): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'latin1'));
    if (!m) return null;
    return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    return null;
  }
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

// ---------------------------------------------------------------------------
// CPU figures
// ---------------------------------------------------------------------------

/**
 * Connections the kernel dropped because a listen queue was full (TcpExt ListenOverflows in
 * /proc/net/netstat, this network namespace), or null. Each one costs the client a SYN
 * retransmission (1 s, then 3 s…): a server listening with a short backlog shows up as
 * logins of a second and more.
 */
function listenOverflows(): number | null {
  try {
    const lines = readFileSync('/proc/net/netstat', 'latin1').split('\n');
    for (let i = 0; i + 1 < lines.length; i++) {
      if (!lines[i]!.startsWith('TcpExt:')) continue;
      const names = lines[i]!.split(/\s+/);
      const values = lines[i + 1]!.split(/\s+/);
      const k = names.indexOf('ListenOverflows');
      return k < 0 ? null : Number(values[k]);
    }
    return null;
  } catch {
    return null;
  }
}

/** What a scenario measures about CPU, from a snapshot taken at its start. */
export interface CpuSnapshot {
  generator: NodeJS.CpuUsage;
  generatorElu: EventLoopUtilization;
  server: ServerStats;
  machine: { busy: number; total: number } | null;
  listenOverflows: number | null;
}

export async function cpuSnapshot(server: Server): Promise<CpuSnapshot> {
  const s = await server.stats();
  return { generator: process.cpuUsage(), generatorElu: performance.eventLoopUtilization(), server: s, machine: machineCpu(), listenOverflows: listenOverflows() };
}

const num = (n: number, digits: number): number | null => (Number.isFinite(n) ? round(n, digits) : null);

/** A process's CPU time (getrusage; ms): the Go login generator's, bench/lib/gogen.ts. */
export interface ProcessCpu {
  userMs: number;
  sysMs: number;
}

/**
 * CPU figures of a scenario since `s0`, over `seconds` of wall time and `ops` operations:
 * generator and server CPU (ms, % of one core, µs per operation) and the CPU used by
 * everything else on the machine (`other_cpu_ms`; large values mean a disturbed run).
 * Server figures are null when unknown (an external server without --server-pid).
 *
 * `external`: the CPU time (ms) another process spent generating the load since `s0` (the
 * Go login generator, bench/lib/gogen.ts): the generator figures are then its, and its
 * event-loop utilization null; this process counts as other CPU on the machine.
 */
export function cpuFigures(
  s0: CpuSnapshot,
  seconds: number,
  ops: number,
  serverNow: ServerStats | null,
  external?: ProcessCpu,
): Result {
  const g = process.cpuUsage(s0.generator);
  const gen = external ? external.userMs + external.sysMs : (g.user + g.system) / 1000;
  const genSys = external ? external.sysMs : g.system / 1000;
  const server = serverNow ? serverNow.cpuMs - s0.server.cpuMs : Number.NaN;
  const gElu = external ? Number.NaN : performance.eventLoopUtilization(s0.generatorElu).utilization;
  const sActive = serverNow ? serverNow.eluActive - s0.server.eluActive : Number.NaN;
  const sIdle = serverNow ? serverNow.eluIdle - s0.server.eluIdle : Number.NaN;
  const m = machineCpu();
  const other = m && s0.machine ? m.busy - s0.machine.busy - gen - (Number.isFinite(server) ? server : 0) : Number.NaN;
  const wall = seconds * 1000;
  return {
    generator_cpu_ms: round(gen, 0),
    generator_cpu_pct: num((100 * gen) / wall, 1),
    generator_sys_ms: round(genSys, 0),
    generator_us_per_op: ops > 0 ? round((1000 * gen) / ops, 1) : null,
    generator_elu: num(gElu, 3),
    server_cpu_ms: num(server, 0),
    server_cpu_pct: num((100 * server) / wall, 1),
    server_us_per_op: ops > 0 ? num((1000 * server) / ops, 1) : null,
    server_elu: num(sActive / (sActive + sIdle), 3),
    other_cpu_ms: Number.isFinite(other) ? round(Math.max(0, other), 0) : null,
    listen_overflows: s0.listenOverflows === null ? null : (listenOverflows() ?? s0.listenOverflows) - s0.listenOverflows,
  };
}

// ---------------------------------------------------------------------------
// Pinning
// ---------------------------------------------------------------------------

function canPin(): boolean {
  if (CORES < 2) return false;
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** This process and all its threads (libuv pool included) on core 1. */
function pinGenerator(): void {
  execFileSync('taskset', ['-a', '-c', '-p', '1', String(process.pid)], { stdio: 'ignore' });
}

// ---------------------------------------------------------------------------
// An external server (--target)
// ---------------------------------------------------------------------------

export function externalServer(opts: { host: string; port: number; domain: string; pid: number | null; pin: boolean }): Server {
  let pinned = false;
  if (opts.pin) {
    if (canPin()) {
      pinGenerator();
      pinned = true;
    } else info('--pin: taskset or a second core is missing; running unpinned');
  }
  const pid = opts.pid;
  if (pid !== null && Number.isNaN(procCpuMs(pid))) throw new Error(`--server-pid ${pid}: no such process (/proc/${pid}/stat)`);
  return {
    kind: 'external',
    host: opts.host,
    port: opts.port,
    httpPort: null,
    httpsPort: null,
    domain: opts.domain,
    pid,
    pinned,
    stats: async () => (pid === null ? NO_STATS : { ...NO_STATS, cpuMs: procCpuMs(pid) }),
    memory: async () => ({ rssKb: pid === null ? null : procRssKb(pid), heapKb: null }),
    // Nothing to ask: the sessions are closed (each socket saw the server close it); a
    // moment for the server to finish its own cleanup (presence broadcasts, storage).
    waitIdle: () => sleep(200),
    stop: async () => {},
  };
}

// ---------------------------------------------------------------------------
// The Parley child (bench/server-child.ts)
// ---------------------------------------------------------------------------

export interface ChildOptions {
  accounts: number;
  password: string;
  domain: string;
  requireEncryption: boolean;
  pin: boolean;
  profile: boolean;
  nodeArgs: string[];
  /** Called when the child exits while it was not asked to stop. */
  onUnexpectedExit: (why: string) => void;
}

export async function startChild(opts: ChildOptions): Promise<Server & { setupMs: number; iterations: number; accounts: number }> {
  const cpuWaiters: Array<(m: Extract<ChildMessage, { type: 'cpu' }>) => void> = [];
  const memWaiters: Array<(m: Extract<ChildMessage, { type: 'mem' }> | null) => void> = [];
  let stopping = false;
  let dataDir: string | null = null;

  const nodeArgs = ['--import', 'tsx', '--expose-gc'];
  if (opts.profile) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${join(BENCH_DIR, 'profiles')}`);
  nodeArgs.push(...opts.nodeArgs);
  const childArgs = [
    ...nodeArgs,
    join(BENCH_DIR, 'server-child.ts'),
    '--accounts',
    String(opts.accounts),
    '--password',
    opts.password,
    '--domain',
    opts.domain,
    ...(opts.requireEncryption ? [] : ['--no-require-encryption']),
  ];
  let cmd = process.execPath;
  let args = childArgs;
  let pinned = false;
  if (opts.pin) {
    if (canPin()) {
      cmd = 'taskset';
      // On one core, what bin/parley (the installed command) would start Node with there.
      const oneCore = opts.nodeArgs.includes('--no-single-threaded-gc') ? [] : ['--single-threaded-gc'];
      args = ['-c', '0', process.execPath, ...oneCore, ...childArgs.filter((a) => a !== '--no-single-threaded-gc')];
      pinGenerator();
      pinned = true;
    } else {
      info('--pin: taskset or a second core is missing; running unpinned');
    }
  }
  let c: ChildProcess | null = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const proc = c;
  // IPC to a child that just died (EPIPE): stats() and the exit handler deal with it.
  proc.on('error', (err) => info(`server child: ${err.message}`));
  const ready = await new Promise<Extract<ChildMessage, { type: 'ready' }>>((resolve, reject) => {
    proc.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') {
        dataDir = m.dataDir;
        resolve(m);
      } else if (m.type === 'error') reject(new Error(`server child: ${m.message}`));
      else if (m.type === 'cpu') cpuWaiters.shift()?.(m);
      else if (m.type === 'mem') memWaiters.shift()?.(m);
    });
    proc.once('exit', (code, signal) => {
      c = null;
      // The child removes its data directory when it stops; not when it was killed.
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      for (const w of memWaiters.splice(0)) w(null);
      for (const w of cpuWaiters.splice(0)) {
        w({ type: 'cpu', user: Number.NaN, system: Number.NaN, elu: { idle: Number.NaN, active: Number.NaN }, sessions: -1, streams: -1 });
      }
      reject(new Error(`server child exited (${code ?? signal}) before it was ready`));
      if (!stopping) opts.onUnexpectedExit(`the server child exited unexpectedly (${code ?? signal})`);
    });
  });
  // taskset execs node: the pid is the server's.
  const pid = proc.pid ?? null;

  const stats = (): Promise<ServerStats> => {
    const cp = c;
    if (!cp?.connected) return Promise.resolve(NO_STATS);
    return new Promise((resolve) => {
      const waiter = (m: Extract<ChildMessage, { type: 'cpu' }>): void =>
        resolve({ cpuMs: (m.user + m.system) / 1000, eluActive: m.elu.active, eluIdle: m.elu.idle, streams: m.streams, sessions: m.sessions });
      cpuWaiters.push(waiter);
      cp.send({ type: 'cpu' } satisfies ParentMessage, (err) => {
        if (!err) return;
        const i = cpuWaiters.indexOf(waiter);
        if (i >= 0) cpuWaiters.splice(i, 1);
        resolve(NO_STATS);
      });
    });
  };

  /** The child's memory after a full GC (bytes), or null once it is gone. */
  const childMemory = (): Promise<Extract<ChildMessage, { type: 'mem' }> | null> => {
    const cp = c;
    if (!cp?.connected) return Promise.resolve(null);
    return new Promise((resolve) => {
      memWaiters.push(resolve);
      cp.send({ type: 'mem' } satisfies ParentMessage, (err) => {
        if (!err) return;
        const i = memWaiters.indexOf(resolve);
        if (i >= 0) memWaiters.splice(i, 1);
        resolve(null);
      });
    });
  };

  return {
    kind: 'parley-child',
    host: '127.0.0.1',
    port: ready.port,
    httpPort: ready.httpPort,
    httpsPort: ready.httpsPort,
    domain: ready.domain,
    pid,
    pinned,
    setupMs: ready.setupMs,
    iterations: ready.iterations,
    accounts: ready.accounts,
    stats,
    memory: async () => {
      const m = await childMemory();
      // VmRSS, as for an external server (the same as process.memoryUsage().rss).
      const rss = pid === null ? null : procRssKb(pid);
      return { rssKb: rss ?? (m ? Math.round(m.rss / 1024) : null), heapKb: m ? Math.round(m.heapUsed / 1024) : null };
    },
    waitIdle: async (ms = 10_000) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const s = await stats();
        if (s.streams <= 0) return;
        await sleep(20);
      }
      info('warning: the server still has open streams');
    },
    stop: async (graceMs = 5000) => {
      const cp = c;
      stopping = true;
      if (!cp) return;
      const exited = new Promise<void>((resolve) => cp.once('exit', () => resolve()));
      if (cp.connected) cp.send({ type: 'stop' } satisfies ParentMessage);
      const t = setTimeout(() => cp.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
      c = null;
    },
  };
}
