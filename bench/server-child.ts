/**
 * The server side of the load benchmark (bench/load.ts), run in its own process so
 * that server and load generator do not share one event loop (and, with `--pin`,
 * not one core).
 *
 * Started by bench/load.ts with an IPC channel. It starts a Parley server the way the
 * tests do (random free ports on 127.0.0.1, a temporary data directory, SQLite,
 * logging silent), creates the accounts `bench0 … bench<n-1>` with one password
 * directly through `server.accounts.create`, then reports to the parent:
 *
 *   child → parent  { type: 'ready', port, httpPort, httpsPort, domain, accounts, iterations, setupMs, dataDir }
 *   parent → child  { type: 'cpu' }  child → parent { type: 'cpu', user, system, elu, sessions, streams }
 *                   (process.cpuUsage µs, performance.eventLoopUtilization ms, open sessions/streams)
 *   parent → child  { type: 'mem' }  child → parent { type: 'mem', rss, heapUsed, external } (bytes, after gc())
 *   parent → child  { type: 'stop' } child stops the server, removes the data directory and exits 0
 *
 * Arguments: `--accounts <n>` (default 100), `--password <p>` (default `bench-password`),
 * `--domain <d>` (default `localhost`), `--no-require-encryption` (c2s.require_encryption
 * false: clients may authenticate on a plain stream; the generator's `--no-tls`). Exits
 * when the parent goes away.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Server, parseConfig } from '@parley/server';

/** Messages the child sends to the parent over IPC. */
export type ChildMessage =
  | { type: 'ready'; port: number; httpPort: number; httpsPort: number; domain: string; accounts: number; iterations: number; setupMs: number; dataDir: string }
  | { type: 'cpu'; user: number; system: number; elu: { idle: number; active: number }; sessions: number; streams: number }
  | { type: 'mem'; rss: number; heapUsed: number; external: number }
  | { type: 'error'; message: string };

/** Messages the parent sends to the child over IPC. */
export type ParentMessage = { type: 'cpu' } | { type: 'mem' } | { type: 'stop' };

async function main(): Promise<void> {
  if (!process.send) throw new Error('bench/server-child.ts must be started with an IPC channel (by bench/load.ts)');
  const { values } = parseArgs({
    options: {
      accounts: { type: 'string', default: '100' },
      password: { type: 'string', default: 'bench-password' },
      domain: { type: 'string', default: 'localhost' },
      'no-require-encryption': { type: 'boolean', default: false },
    },
  });
  const accounts = Number(values.accounts);
  const t0 = performance.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-bench-'));
  const config = parseConfig({
    domain: values.domain,
    data_dir: dataDir,
    log_level: 'silent',
    storage: { driver: 'sqlite', path: 'parley.db' },
    c2s: { port: 0, direct_tls_port: 0, interfaces: ['127.0.0.1'], require_encryption: !values['no-require-encryption'] },
    // Free ports, so a running server's 5280/5281 do not clash (WebSocket: --transport ws|wss).
    http: { port: 0, tls_port: 0, interfaces: ['127.0.0.1'] },
    // As in the tests: a failed login (a broken benchmark) is reported quickly.
    auth: { failure_delay: '50ms', max_failure_delay: '200ms' },
  });
  const server = new Server(config);
  await server.start();

  // Accounts: PBKDF2 runs on the libuv pool, a few at a time.
  const password = values.password;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < accounts) {
      const i = next++;
      await server.accounts.create(`bench${i}`, password);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));

  let stopping = false;
  const stop = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      await server.stop();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      // Let --cpu-prof write its profile (it does on a normal exit).
      process.exit(code);
    }
  };

  process.on('message', (m: ParentMessage) => {
    if (m.type === 'cpu') {
      const u = process.cpuUsage();
      const reply: ChildMessage = {
        type: 'cpu',
        user: u.user,
        system: u.system,
        elu: { idle: performance.eventLoopUtilization().idle, active: performance.eventLoopUtilization().active },
        sessions: server.sessions.size,
        streams: server.streamCount,
      };
      process.send!(reply);
    } else if (m.type === 'mem') {
      // After a full collection (the parent starts us with --expose-gc), so the heap is what is live.
      (globalThis as { gc?: () => void }).gc?.();
      const u = process.memoryUsage();
      process.send!({ type: 'mem', rss: u.rss, heapUsed: u.heapUsed, external: u.external } satisfies ChildMessage);
    } else if (m.type === 'stop') {
      void stop(0);
    }
  });
  // The parent died or closed the channel: do not linger.
  process.on('disconnect', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  const ready: ChildMessage = {
    type: 'ready',
    port: server.ports().c2s,
    httpPort: server.ports().http!,
    httpsPort: server.ports().https!,
    domain: config.domain,
    accounts,
    iterations: config.auth.scram_iterations,
    setupMs: performance.now() - t0,
    dataDir,
  };
  process.send(ready);
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  if (process.send) process.send({ type: 'error', message } satisfies ChildMessage);
  console.error(message);
  process.exit(1);
});
