/**
 * The Go login generator (bench/gen/login.go, `--generator go`): the login sequence of
 * bench/lib/xmpp.ts `login()` in a Go process (standard library only), whose TLS client
 * handshake costs about half of Node's, so that a TLS login benchmark measures the server
 * and not the generator. This module builds the binary (bench/.cache/login-gen) when it is
 * missing or older than its source, starts it (with GOMAXPROCS=1 and, on a pinned run,
 * under `taskset -c 1`, the generator's core) and drives it over its stdin/stdout line
 * protocol (described at the top of login.go).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, info } from './report.ts';
import type { ProcessCpu } from './server.ts';

const GEN_DIR = join(BENCH_DIR, 'gen');
const CACHE_DIR = join(BENCH_DIR, '.cache');
const BINARY = join(CACHE_DIR, 'login-gen');
/** No network for modules: the standard library only, the installed toolchain only. */
const GO_ENV = { GOFLAGS: '-mod=mod', GOPROXY: 'off', GOTOOLCHAIN: 'local' };

function mtime(path: string): number | null {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

/** Builds bench/.cache/login-gen when it is missing or older than its source; returns its path. */
export function buildGoGenerator(): string {
  const built = mtime(BINARY);
  const source = Math.max(mtime(join(GEN_DIR, 'login.go')) ?? 0, mtime(join(GEN_DIR, 'go.mod')) ?? 0);
  if (built !== null && built >= source) return BINARY;
  // Go's build cache in ours too: nothing outside the checkout, whatever HOME is.
  const env: NodeJS.ProcessEnv = { ...process.env, ...GO_ENV, GOCACHE: join(CACHE_DIR, 'go-build') };
  mkdirSync(CACHE_DIR, { recursive: true });
  const t0 = performance.now();
  try {
    execFileSync('go', ['build', '-o', BINARY, '.'], { cwd: GEN_DIR, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new Error("--generator go: the Go toolchain ('go') is not installed: install Debian's golang-go, or run with --generator node");
    throw new Error(`--generator go: building bench/gen failed:\n${err.stderr ?? err.message}`);
  }
  info(`go generator: built ${BINARY} in ${Math.round(performance.now() - t0)} ms`);
  return BINARY;
}

export interface GoGeneratorOptions {
  host: string;
  port: number;
  domain: string;
  /** STARTTLS before authenticating. */
  tls: boolean;
  mechanism: 'SCRAM-SHA-1' | 'SCRAM-SHA-256';
  /** Account i is `<userPrefix><i>`. */
  userPrefix: string;
  password: string;
  concurrency: number;
  /** Time limit of one login (s). */
  timeoutS: number;
  /** Run under `taskset -c 1` (the generator's core of a pinned run). */
  pin: boolean;
}


/** What one `run` did. */
export interface GoRun {
  /** Logins that completed. */
  done: number;
  /** Per-login latencies (ms, in completion order). */
  latencies: Float64Array;
  /** Logins that failed (no new login starts after the first failure). */
  errorCount: number;
  /** The first failures' messages (at most 10; the first one first). */
  errors: string[];
  /** Wall time of the run as the generator saw it. */
  seconds: number;
  /** The generator's CPU time at the end of the run (take the difference with {@link GoGenerator.cpu}). */
  cpu: ProcessCpu;
  /** PBKDF2 derivations the generator had to run during this run (SCRAM keys are cached per salt). */
  pbkdf2: number;
  /** The last SCRAM iteration count seen (null before any). */
  iterations: number | null;
}

type Line = Record<string, unknown>;

/** A running Go generator: run(), cpu(), close(), then exit(). */
export class GoGenerator {
  readonly pid: number;
  readonly #proc: ChildProcess;
  #buf = '';
  #waiters: Array<{ type: string; resolve: (l: Line) => void; reject: (e: Error) => void }> = [];
  #onProgress: ((l: Line) => void) | null = null;
  #exited: Promise<void>;
  #gone: Error | null = null;
  /** The CPU time of the last progress line (for a partial report). */
  lastCpu: ProcessCpu | null = null;

  private constructor(proc: ChildProcess) {
    this.#proc = proc;
    this.pid = proc.pid ?? -1;
    this.#exited = new Promise((resolve) => {
      const gone = (e: Error): void => {
        this.#gone ??= e;
        for (const w of this.#waiters.splice(0)) w.reject(this.#gone);
        resolve();
      };
      proc.once('exit', (code, signal) => gone(new Error(`the Go generator exited (${code ?? signal})`)));
      // A process that could not be started emits no 'exit'.
      proc.on('error', (e) => gone(new Error(`the Go generator: ${e.message}`)));
    });
    proc.stdout!.on('data', (d: Buffer) => this.#data(d));
    proc.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
    // A dying parent takes the generator along (its stdin closes too, but it may be mid-run).
    const kill = (): void => void proc.kill('SIGKILL');
    process.once('exit', kill);
    proc.once('exit', () => process.removeListener('exit', kill));
  }

  /** Builds (if needed) and starts the generator. */
  static start(o: GoGeneratorOptions): GoGenerator {
    const bin = buildGoGenerator();
    const args = [
      '-host', o.host, '-port', String(o.port), '-domain', o.domain, `-tls=${o.tls}`, '-mechanism', o.mechanism,
      '-user-prefix', o.userPrefix, '-password', o.password, '-concurrency', String(o.concurrency), '-timeout', `${o.timeoutS}s`,
    ];
    const [cmd, argv] = o.pin ? ['taskset', ['-c', '1', bin, ...args]] : [bin, args];
    const proc = spawn(cmd, argv, { env: { ...process.env, GOMAXPROCS: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    // Writes to a generator that just died (EPIPE) surface through the exit handler.
    proc.stdin!.on('error', () => {});
    return new GoGenerator(proc);
  }

  #data(d: Buffer): void {
    this.#buf += d.toString('utf8');
    let i: number;
    while ((i = this.#buf.indexOf('\n')) >= 0) {
      const s = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(i + 1);
      let l: Line;
      try {
        l = JSON.parse(s) as Line;
      } catch {
        info(`go generator: ${s}`);
        continue;
      }
      if (l.type === 'progress') {
        this.lastCpu = { userMs: Number(l.cpu_user_ms), sysMs: Number(l.cpu_sys_ms) };
        this.#onProgress?.(l);
        continue;
      }
      const k = this.#waiters.findIndex((w) => w.type === l.type);
      if (k < 0) info(`go generator: unexpected ${s.slice(0, 200)}`);
      else this.#waiters.splice(k, 1)[0]!.resolve(l);
    }
  }

  #ask(command: string, type: string): Promise<Line> {
    if (this.#gone) return Promise.reject(this.#gone);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ type, resolve, reject });
      this.#proc.stdin!.write(`${command}\n`);
    });
  }

  /**
   * `n` logins of accounts offset … offset+n-1 (resources `<phase><i>`), the generator's
   * concurrency in flight; the sessions stay open until close(). `progress` gets the count
   * done, all latencies so far and the failures, at most every 500 ms.
   */
  async run(n: number, phase: string, offset = 0, progress?: (done: number, latencies: Float64Array, errors: number) => void): Promise<GoRun> {
    if (!/^\S+$/.test(phase)) throw new Error(`go generator: bad phase '${phase}'`);
    const lat = new Float64Array(n);
    let done = 0;
    this.lastCpu = null;
    this.#onProgress = (l) => {
      for (const v of (l.new_latencies_ms as number[] | null) ?? []) if (done < n) lat[done++] = v;
      progress?.(done, lat.subarray(0, done), Number(l.errors));
    };
    try {
      const r = await this.#ask(`run ${n} ${phase} ${offset}`, 'run');
      const latencies = Float64Array.from((r.latencies_ms as number[] | null) ?? []);
      return {
        done: Number(r.done),
        latencies,
        errorCount: Number(r.errors),
        errors: (r.error_samples as string[] | null) ?? (r.first_error ? [String(r.first_error)] : []),
        seconds: Number(r.seconds),
        cpu: { userMs: Number(r.cpu_user_ms), sysMs: Number(r.cpu_sys_ms) },
        pbkdf2: Number(r.pbkdf2 ?? 0),
        iterations: r.iterations ? Number(r.iterations) : null,
      };
    } finally {
      this.#onProgress = null;
    }
  }

  /** The generator's CPU time so far. */
  async cpu(): Promise<ProcessCpu> {
    const r = await this.#ask('cpu', 'cpu');
    return { userMs: Number(r.cpu_user_ms), sysMs: Number(r.cpu_sys_ms) };
  }

  /** Closes every open session (`</stream:stream>`; the generator waits at most 10 s); resolves with their count. */
  async close(): Promise<number> {
    const r = await this.#ask('close', 'closed');
    return Number(r.count);
  }

  /** Ends the generator (it closes what is still open first); killed if it takes over `ms`. */
  async exit(ms = 15_000): Promise<void> {
    if (!this.#gone) this.#proc.stdin!.end();
    const t = setTimeout(() => this.#proc.kill('SIGKILL'), ms);
    await this.#exited;
    clearTimeout(t);
  }
}
