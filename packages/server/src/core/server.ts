import tls from 'node:tls';
import { mkdirSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SCRAM_MECHANISMS, StreamError, type ScramHash } from '@parley/xmpp';
import { registrationPolicy, resolveDataPath, type ParleyConfig } from '../config/index.ts';
import { KvStore, openDatabase, type Database, type StorageConfig } from '../storage/index.ts';
import { Hooks } from './hooks.ts';
import { Router } from './router.ts';
import { SessionManager } from './session.ts';
import { DiscoInfo, DiscoItems } from './disco.ts';
import { AccountService } from './accounts.ts';
import { AuthThrottle } from './auth-throttle.ts';
import { createLogger, type Logger } from './logger.ts';
import { loadCertificate, type CertificatePair } from './certs.ts';
import { loadModule, type LoadedModule, type ModuleDefinition, type ModuleHost } from './module.ts';
import { C2SStream, type C2SContext } from '../streams/c2s.ts';
import type { StreamFeatureProvider } from '../streams/features.ts';
import { TcpTransport, listenTcp, type Listener } from '../transports/tcp.ts';
import { HttpService } from '../http/server.ts';
import { BUILTIN } from '../modules/index.ts';

/** The storage settings of a configuration, with paths resolved against `data_dir`. */
export function storageConfigOf(config: ParleyConfig): StorageConfig {
  const s = config.storage;
  if (s.driver === 'sqlite') return { driver: 'sqlite', path: resolveDataPath(config, s.path) };
  return { driver: 'postgres', url: s.url, pool_size: s.pool_size, schema: s.schema };
}

/** The SCRAM hashes to store keys for, from the enabled mechanisms (SHA-256 always, for PLAIN). */
export function scramHashesOf(config: ParleyConfig): ScramHash[] {
  const set = new Set<ScramHash>();
  for (const m of config.auth.mechanisms) {
    const s = SCRAM_MECHANISMS[m];
    if (s) set.add(s.hash);
  }
  if (set.size === 0) set.add('SHA-256');
  return [...set];
}

/**
 * One Parley server process: storage, accounts, router, modules and the
 * client listeners. `start()` brings it up; `stop()` closes every stream with
 * `system-shutdown` (RFC 6120 §4.9.3.20) and releases everything.
 */
export class Server {
  readonly config: ParleyConfig;
  readonly log: Logger;
  readonly hooks = new Hooks();
  readonly sessions = new SessionManager();
  readonly router: Router;
  readonly disco = { host: new DiscoInfo(), account: new DiscoInfo(), items: new DiscoItems() };
  storage!: Database;
  accounts!: AccountService;
  certificate!: CertificatePair;
  private streams = new Set<C2SStream>();
  private streamFeatures: StreamFeatureProvider[] = [];
  private modules: LoadedModule[] = [];
  private listeners: { c2s: Listener | null; directTls: Listener | null } = { c2s: null, directTls: null };
  private http: HttpService | null = null;
  private started = false;

  constructor(config: ParleyConfig, opts: { log?: Logger } = {}) {
    this.config = config;
    this.log = opts.log ?? createLogger(config.log_level);
    this.router = new Router({ hooks: this.hooks, sessions: this.sessions, hosts: [config.domain], log: this.log });
  }

  /** Opens storage, loads modules and listens. Throws on a port in use or an unreadable certificate. */
  async start(): Promise<void> {
    const c = this.config;
    if (c.storage.driver === 'sqlite' && c.storage.path !== ':memory:') mkdirSync(resolve(c.data_dir), { recursive: true });
    this.storage = await openDatabase(storageConfigOf(c));
    this.accounts = new AccountService(this.storage, c.domain, c.auth.scram_iterations, scramHashesOf(c));
    try {
      this.certificate = await loadCertificate({
        domain: c.domain,
        dataDir: resolve(c.data_dir),
        certificate: c.tls.certificate,
        key: c.tls.key,
      });
      const host: ModuleHost = {
        config: c,
        host: c.domain,
        hooks: this.hooks,
        router: this.router,
        sessions: this.sessions,
        storage: this.storage,
        kv: new KvStore(this.storage),
        accounts: this.accounts,
        log: this.log,
        disco: this.disco,
        streamFeatures: this.streamFeatures,
      };
      for (const def of await this.moduleDefinitions()) this.modules.push(await loadModule(def, host));
      await this.listen();
    } catch (err) {
      await Promise.all([this.listeners.c2s?.close(), this.listeners.directTls?.close(), this.http?.close()]);
      this.listeners = { c2s: null, directTls: null };
      this.http = null;
      await this.release();
      throw err;
    }
    this.started = true;
  }

  private async moduleDefinitions(): Promise<ModuleDefinition[]> {
    const disabled = new Set<string>(this.config.modules.disabled);
    const defs = BUILTIN.filter((m) => !disabled.has(m.name));
    for (const spec of this.config.modules.extra) {
      const target = spec.startsWith('.') || isAbsolute(spec) ? pathToFileURL(resolve(spec)).href : spec;
      const mod = (await import(target)) as Record<string, unknown>;
      const found = Object.values(mod).filter(
        (v): v is ModuleDefinition =>
          typeof v === 'object' && v !== null && typeof (v as ModuleDefinition).load === 'function' && typeof (v as ModuleDefinition).name === 'string',
      );
      if (found.length === 0) throw new Error(`modules.extra: '${spec}' exports no module (use defineModule)`);
      defs.push(...found);
    }
    return defs;
  }

  private async listen(): Promise<void> {
    const c = this.config;
    const secureContext = tls.createSecureContext({
      cert: this.certificate.cert,
      key: this.certificate.key,
      minVersion: c.tls.min_version,
    });
    const ctx: C2SContext = {
      domain: c.domain,
      router: this.router,
      hooks: this.hooks,
      sessions: this.sessions,
      accounts: this.accounts,
      throttle: new AuthThrottle(c.auth.failure_delay, c.auth.max_failure_delay),
      log: this.log,
      streamFeatures: this.streamFeatures,
      streams: this.streams,
      options: {
        requireEncryption: c.c2s.require_encryption,
        allowPlainWithoutTls: c.auth.allow_plain_without_tls,
        mechanisms: c.auth.mechanisms,
        authTimeout: c.c2s.auth_timeout,
        maxStanzaSize: c.limits.max_stanza_size,
        maxDepth: c.limits.max_depth,
        maxAttributes: c.limits.max_attributes,
        maxOutputQueue: c.limits.max_output_queue,
        scramIterations: c.auth.scram_iterations,
      },
    };
    this.listeners.c2s = await listenTcp(c.c2s.interfaces, c.c2s.port, null, (socket) => {
      new C2SStream(new TcpTransport(socket, secureContext), ctx);
    });
    if (c.c2s.direct_tls_port !== null) {
      this.listeners.directTls = await listenTcp(
        c.c2s.interfaces,
        c.c2s.direct_tls_port,
        { cert: this.certificate.cert, key: this.certificate.key, minVersion: c.tls.min_version },
        (socket) => {
          new C2SStream(new TcpTransport(socket, null), ctx);
        },
      );
    }
    if (c.http.port !== null || c.http.tls_port !== null) {
      this.http = new HttpService({
        config: c,
        certificate: this.certificate,
        log: this.log,
        openStream: (transport) => {
          new C2SStream(transport, ctx);
        },
        registrationOpen: registrationPolicy(c) === 'open',
      });
      await this.http.start();
    }
  }

  /** The bound ports (useful when configured as 0); `null` for a listener that is off. */
  ports(): { c2s: number; directTls: number | null; http: number | null; https: number | null } {
    const port = (l: Listener | null) => (l ? Number(l.addresses()[0]!.split(':').pop()) : null);
    const http = this.http?.ports() ?? { http: null, https: null };
    return { c2s: port(this.listeners.c2s)!, directTls: port(this.listeners.directTls), ...http };
  }

  /** Human-readable listening addresses, for the start-up message. */
  addresses(): { c2s: string[]; directTls: string[]; http: string[] } {
    return {
      c2s: this.listeners.c2s?.addresses() ?? [],
      directTls: this.listeners.directTls?.addresses() ?? [],
      http: this.http?.addresses() ?? [],
    };
  }

  /** Number of open client streams (bound or not). */
  get streamCount(): number {
    return this.streams.size;
  }

  /**
   * Stops the server: closes the listeners, ends every stream with
   * `system-shutdown` then `</stream:stream>`, unloads modules, closes storage.
   */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    // Stop accepting; the listeners finish closing once their connections are gone.
    const closing = Promise.all([this.listeners.c2s?.close(), this.listeners.directTls?.close()]);
    this.listeners = { c2s: null, directTls: null };
    // Modules say goodbye while the streams are still open (e.g. MUC status 332, XEP-0045 §16.2).
    try {
      await this.hooks.emit('server/stopping', {});
    } catch (err) {
      this.log.error({ err }, 'server/stopping hook failed');
    }
    for (const s of [...this.streams]) s.close(new StreamError('system-shutdown', 'the server is shutting down'));
    await closing;
    await this.http?.close();
    this.http = null;
    await this.release();
  }

  private async release(): Promise<void> {
    for (const m of this.modules.reverse()) {
      try {
        await m.unload();
      } catch (err) {
        this.log.error({ err, module: m.definition.name }, 'module unload failed');
      }
    }
    this.modules = [];
    await this.storage?.close();
  }
}
