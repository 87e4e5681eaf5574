import { StanzaError, type XmlElement } from '@parley/xmpp';
import { Router, type IqHandler, type StanzaEvent } from './router.ts';
import { HANDLED, type HookHandler, type Hooks } from './hooks.ts';
import type { SessionManager } from './session.ts';
import type { DiscoInfo, DiscoItems } from './disco.ts';
import type { Logger } from './logger.ts';
import type { ParleyConfig } from '../config/index.ts';
import type { Database, KvStore } from '../storage/index.ts';
import type { AccountService } from './accounts.ts';
import type { StreamFeatureProvider } from '../streams/features.ts';

/**
 * What a module gets when it loads (ARCHITECTURE §3). Everything registered
 * through it (hooks, iq handlers, disco features, stream features, timers) is
 * released when the module unloads.
 */
export interface ModuleContext {
  readonly name: string;
  /** The validated server configuration. */
  readonly config: ParleyConfig;
  /** The XMPP domain served. */
  readonly host: string;
  readonly router: Router;
  readonly sessions: SessionManager;
  readonly storage: Database;
  /** Per-account key/value storage (kv_store). */
  readonly kv: KvStore;
  readonly accounts: AccountService;
  readonly log: Logger;
  /** Service discovery of the server itself (XEP-0030): its info, accounts' info, the server's items. */
  readonly disco: { host: DiscoInfo; account: DiscoInfo; items: DiscoItems };
  /** Registers a hook handler (see {@link Hooks}). */
  on<P>(event: string, handler: HookHandler<P>, priority?: number): void;
  /**
   * Handles iq get/set requests with payload namespace `ns` addressed to the
   * server (`host`) or to an account's bare JID (`bare`; also requests with no
   * `to`, RFC 6120 §10.3). The handler returns the result payload (or `null`
   * for an empty result) or throws a StanzaError; a request of a type with no
   * handler gets `bad-request`.
   */
  iq(kind: 'host' | 'bare', ns: string, handlers: { get?: IqHandler; set?: IqHandler }): void;
  /** Adds a stream feature offered after authentication (e.g. stream management). */
  streamFeature(provider: StreamFeatureProvider): void;
  /** A repeating timer, cleared on unload. */
  every(ms: number, fn: () => void): void;
  /** Runs `fn` when the module unloads. */
  onUnload(fn: () => void | Promise<void>): void;
}

/** A module definition: `defineModule({ name, xeps, load })`. */
export interface ModuleDefinition {
  /** Unique name, used in config (`modules.disabled`) and logs. */
  name: string;
  /** Specifications implemented, e.g. `['XEP-0199']`, for doap.xml and disco. */
  xeps: string[];
  /** Called once at start-up; may be async. */
  load(ctx: ModuleContext): void | Promise<void>;
}

/** Declares a module (identity function that gives types). */
export function defineModule(def: ModuleDefinition): ModuleDefinition {
  return def;
}

/** Host services a module context is built from. */
export interface ModuleHost {
  config: ParleyConfig;
  host: string;
  hooks: Hooks;
  router: Router;
  sessions: SessionManager;
  storage: Database;
  kv: KvStore;
  accounts: AccountService;
  log: Logger;
  disco: { host: DiscoInfo; account: DiscoInfo; items: DiscoItems };
  streamFeatures: StreamFeatureProvider[];
}

/** A loaded module and how to unload it. */
export interface LoadedModule {
  definition: ModuleDefinition;
  unload(): Promise<void>;
}

/** Loads a module into the server; everything it registers is tracked for unload. */
export async function loadModule(def: ModuleDefinition, host: ModuleHost): Promise<LoadedModule> {
  const cleanups: Array<() => void | Promise<void>> = [];
  const log = host.log.child({ module: def.name });
  const ctx: ModuleContext = {
    name: def.name,
    config: host.config,
    host: host.host,
    router: host.router,
    sessions: host.sessions,
    storage: host.storage,
    kv: host.kv,
    accounts: host.accounts,
    log,
    disco: host.disco,
    on(event, handler, priority) {
      cleanups.push(host.hooks.on(event, handler, priority));
    },
    iq(kind, ns, handlers) {
      const handler = (ev: StanzaEvent) => {
        const type = ev.stanza.attrs.type as 'get' | 'set';
        const fn = handlers[type];
        if (!fn) throw new StanzaError('bad-request', `iq type '${type}' is not used with ${ns}`);
        const r = fn(ev);
        if (r instanceof Promise) {
          return r.then((payload) => {
            reply(ev, payload);
            return HANDLED;
          });
        }
        reply(ev, r);
        return HANDLED;
      };
      cleanups.push(host.hooks.on(`iq/${kind}/${ns}`, handler));
    },
    streamFeature(provider) {
      host.streamFeatures.push(provider);
      cleanups.push(() => {
        const i = host.streamFeatures.indexOf(provider);
        if (i >= 0) host.streamFeatures.splice(i, 1);
      });
    },
    every(ms, fn) {
      const t = setInterval(() => {
        try {
          fn();
        } catch (err) {
          log.error({ err }, 'timer failed');
        }
      }, ms);
      t.unref();
      cleanups.push(() => clearInterval(t));
    },
    onUnload(fn) {
      cleanups.push(fn);
    },
  };

  function reply(ev: StanzaEvent, payload: XmlElement | null): void {
    const res = Router.resultFor(ev.stanza, payload);
    if (ev.stanza.attrs.to === undefined && ev.origin) {
      // A request with no 'to' is answered by the server for the account, without 'from' (RFC 6120 §10.3.3).
      ev.origin.send(res);
      return;
    }
    res.attrs.from = ev.stanza.attrs.to ?? ev.from.bareString();
    host.router.route(res, null);
  }

  await def.load(ctx);
  return {
    definition: def,
    async unload() {
      for (const c of cleanups.reverse()) await c();
    },
  };
}
