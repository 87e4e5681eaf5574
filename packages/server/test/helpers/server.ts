import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server } from '../../src/core/server.ts';
import { parseConfig, type ParleyConfig } from '../../src/config/index.ts';

/** A real Parley server on random free loopback ports, with a temporary data directory. */
export interface TestServer {
  server: Server;
  config: ParleyConfig;
  /** STARTTLS client port. */
  port: number;
  /** Direct TLS client port. */
  tlsPort: number;
  /** Plain HTTP port (WebSocket, BOSH, host-meta, chat), on 127.0.0.1. */
  httpPort: number;
  /** HTTPS port, on 127.0.0.1. */
  httpsPort: number;
  dataDir: string;
  /** Creates an account; returns its bare JID. */
  createUser(username: string, password: string): Promise<string>;
  /** Stops the server (keeps the data directory unless `cleanup`). */
  stop(cleanup?: boolean): Promise<void>;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/**
 * Starts the server with the given config overrides (YAML-shaped input, so
 * durations may be strings). Defaults: ports 0 on 127.0.0.1, SQLite in a temp
 * dir, logging silent (PARLEY_TEST_LOG=debug to see it), short auth delays.
 */
export async function startTestServer(overrides: Record<string, unknown> = {}, dataDir?: string): Promise<TestServer> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'parley-test-'));
  const input: Record<string, unknown> = {
    data_dir: dir,
    log_level: process.env.PARLEY_TEST_LOG ?? 'silent',
    ...overrides,
    c2s: { port: 0, direct_tls_port: 0, interfaces: ['127.0.0.1'], ...(overrides.c2s as object) },
    http: { port: 0, tls_port: 0, interfaces: ['127.0.0.1'], ...(overrides.http as object) },
    auth: { failure_delay: '50ms', max_failure_delay: '200ms', ...(overrides.auth as object) },
  };
  const config = parseConfig(input);
  const server = new Server(config);
  await server.start();
  const ports = server.ports();
  return {
    server,
    config,
    port: ports.c2s,
    tlsPort: ports.directTls!,
    httpPort: ports.http!,
    httpsPort: ports.https!,
    dataDir: dir,
    async createUser(username, password) {
      const u = await server.accounts.create(username, password);
      return `${u}@${config.domain}`;
    },
    async stop(cleanup = true) {
      await server.stop();
      if (cleanup && !dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type { DeepPartial };
