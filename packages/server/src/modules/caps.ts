import { CAPS_HASHES, JID, NS, readCapsInfo, verifyCaps, xml, type CapsInfo, type XmlElement } from '@parley/xmpp';
import { defineModule } from '../core/module.ts';
import type { Router } from '../core/router.ts';
import type { Session } from '../core/session.ts';
import type { Logger } from '../core/logger.ts';

/** Events the caps module fires (through the server's hooks). */
export const CAPS_EVENTS = {
  /** What a JID supports became known or changed: `{ jid: JID, features: ReadonlySet<string> }` (e.g. PEP's `+notify`, XEP-0163 §4). */
  changed: 'caps/changed',
} as const;

/** Payload of {@link CAPS_EVENTS.changed}. */
export interface CapsChangedEvent {
  jid: JID;
  features: ReadonlySet<string>;
}

/** What a JID announced in its last presence with `<c/>` (XEP-0115 §4). */
interface Announced {
  hash: string;
  node: string;
  ver: string;
  /** For a hash this server does not support: the answer of this JID alone (§5.4 rule 2.3). */
  own?: ReadonlySet<string>;
  /** Listeners were told what this announcement means. */
  notified?: boolean;
}

/** A verified cache entry: what an entity announcing (hash, ver) supports. */
interface Verified {
  info: CapsInfo;
  features: ReadonlySet<string>;
}

/** Options of a {@link CapsCache}. */
export interface CapsCacheOptions {
  /**
   * Sends a disco#info request for `node` to `jid` and resolves with the `<query/>` of the
   * result (XEP-0115 §6.2); rejects on an error or timeout.
   */
  query(jid: JID, node: string): Promise<XmlElement>;
  /** Called when what a JID supports became known or changed. */
  onChange?(jid: JID, features: ReadonlySet<string>): void;
  /** Most verified (hash, ver) pairs kept, least recently used dropped first; default 10,000. */
  maxEntries?: number;
  log?: Logger;
}

/** Remembered failed verifications (JID + hash + ver), so that a presence repeated does not ask again. */
const MAX_FAILED = 1000;

/**
 * Entity capabilities of the entities that send this server presence (XEP-0115): which
 * features a full JID supports, known without asking it each time.
 *
 * A presence with `<c hash node ver/>` is recorded with {@link observe}. When the
 * (hash, ver) pair is not cached yet, the server asks the entity `disco#info` at node
 * `node#ver` (§6.2) and checks the answer as §5.4 prescribes: well-formed (no duplicate
 * identity, feature or FORM_TYPE) and hashing to `ver` under `hash`. Only such a verified
 * answer is cached, for every JID announcing the same pair (§5.4 rule 3.8, §8.2); an answer
 * that does not verify is not cached and the next JID announcing the pair is asked instead
 * (rule 3.9). A hash this server does not support (not in `CAPS_HASHES`) gets one query whose
 * answer is kept for that JID only (rule 2); a `<c/>` without `hash` (the legacy format, §13)
 * is ignored. Verifications of one pair are never run twice at once.
 *
 * In memory only, bounded: at most `maxEntries` verified pairs (LRU), one record per JID
 * that sent presence (dropped with {@link forget} on unavailable presence or session end),
 * at most 1000 remembered failures.
 */
export class CapsCache {
  private verified = new Map<string, Verified>();
  private byJid = new Map<string, Announced>();
  /** (hash, ver) being verified → JIDs that announced it meanwhile (candidates if the one asked fails). */
  private inflight = new Map<string, Set<string>>();
  private failed = new Map<string, true>();
  /** JIDs with a caps question outstanding (at most one each). */
  private asking = new Set<string>();
  private readonly max: number;

  constructor(private opts: CapsCacheOptions) {
    this.max = opts.maxEntries ?? 10_000;
  }

  /** Number of verified (hash, ver) pairs cached. */
  get size(): number {
    return this.verified.size;
  }

  /**
   * The features `jid` (a full JID) supports, from its last caps announcement; `undefined`
   * when it announced none, or while (or when) its announcement could not be verified.
   */
  featuresOf(jid: JID | string): ReadonlySet<string> | undefined {
    const a = this.byJid.get(jid.toString());
    if (!a) return undefined;
    if (a.own) return a.own;
    return this.get(key(a.hash, a.ver))?.features;
  }

  /** The `<c/>` attributes `jid` last announced with a `hash` (XEP-0115 §4), or `undefined`. */
  announced(jid: JID | string): { hash: string; node: string; ver: string } | undefined {
    const a = this.byJid.get(jid.toString());
    return a && { hash: a.hash, node: a.node, ver: a.ver };
  }

  /** The verified disco#info of a (hash, ver) pair, or `undefined`. */
  lookup(hash: string, ver: string): CapsInfo | undefined {
    return this.get(key(hash, ver))?.info;
  }

  /**
   * Records the `<c xmlns='http://jabber.org/protocol/caps'/>` of a presence from `jid`
   * (XEP-0115 §6.1) and starts a verification when the pair is unknown. A presence
   * without `<c/>` changes nothing (a server may strip repeated caps, §8.4).
   */
  observe(jid: JID, c: XmlElement | undefined): void {
    if (!c) return;
    const j = jid.toString();
    const { hash, node, ver } = c.attrs;
    if (hash === undefined || node === undefined || ver === undefined || node === '' || ver === '') {
      // §5.4 rule 1 / §13: without 'hash' the ver is not a verification string; ignore it.
      this.byJid.delete(j);
      return;
    }
    const prev = this.byJid.get(j);
    if (prev && prev.hash === hash && prev.ver === ver && prev.node === node) {
      // The same announcement again: nothing to do, unless its verified pair was dropped from the cache since.
      if (prev.own || !prev.notified || this.verified.has(key(hash, ver))) return;
    }
    this.byJid.set(j, { hash, node, ver });
    this.consider(jid);
  }

  /** Forgets what `jid` announced (unavailable presence, session end). */
  forget(jid: JID): void {
    this.byJid.delete(jid.toString());
  }

  private get(k: string): Verified | undefined {
    const v = this.verified.get(k);
    if (v) {
      // LRU: most recently used last.
      this.verified.delete(k);
      this.verified.set(k, v);
    }
    return v;
  }

  /**
   * Acts on what `jid` announced last: tells listeners when the pair is known, else starts a
   * verification — unless the JID failed it before, another JID's answer for the pair is
   * awaited (then this JID is the next candidate), or this JID is being asked something
   * already (one question at a time per JID; it is considered again when the answer comes).
   */
  private consider(jid: JID): void {
    const j = jid.toString();
    const a = this.byJid.get(j);
    if (!a || a.own || a.notified) return;
    if (CAPS_HASHES[a.hash] === undefined) {
      if (!this.asking.has(j)) void this.askOwn(jid, a);
      return;
    }
    const k = key(a.hash, a.ver);
    const known = this.get(k);
    if (known) {
      a.notified = true;
      this.opts.onChange?.(jid, known.features);
      return;
    }
    if (this.failed.has(`${j}\n${k}`)) return;
    const waiting = this.inflight.get(k);
    if (waiting) {
      waiting.add(j);
      return;
    }
    if (this.asking.has(j)) return;
    void this.verify(k, jid, a.node, a.hash, a.ver);
  }

  /** §5.4 rule 3: asks `first`, then the other JIDs announcing the pair until one answer verifies. */
  private async verify(k: string, first: JID, node: string, hash: string, ver: string): Promise<void> {
    const waiting = new Set<string>();
    this.inflight.set(k, waiting);
    const asked: JID[] = [];
    let jid: JID | undefined = first;
    let announcedNode = node;
    try {
      while (jid) {
        const j = jid.toString();
        asked.push(jid);
        this.asking.add(j);
        let info: CapsInfo | null;
        try {
          info = await this.ask(jid, `${announcedNode}#${ver}`, hash, ver);
        } finally {
          this.asking.delete(j);
        }
        if (info) {
          this.verified.set(k, { info, features: new Set(info.features) });
          while (this.verified.size > this.max) this.verified.delete(this.verified.keys().next().value!);
          return;
        }
        this.failed.set(`${j}\n${k}`, true);
        while (this.failed.size > MAX_FAILED) this.failed.delete(this.failed.keys().next().value!);
        // Rule 3.9: try another entity that still announces this pair.
        jid = undefined;
        for (const w of waiting) {
          const a = this.byJid.get(w);
          if (this.asking.has(w)) continue; // busy: considered again when its own answer comes
          waiting.delete(w);
          if (a && key(a.hash, a.ver) === k) {
            jid = JID.parse(w);
            announcedNode = a.node;
            break;
          }
        }
      }
    } finally {
      this.inflight.delete(k);
      // Everyone who announced the pair learns the outcome; those asked may have announced something else meanwhile.
      for (const w of waiting) this.consider(JID.parse(w));
      for (const a of asked) this.consider(a);
    }
  }

  /** Asks `jid` and checks the answer; `null` when it fails or does not verify. */
  private async ask(jid: JID, node: string, hash: string, ver: string): Promise<CapsInfo | null> {
    let query: XmlElement;
    try {
      query = await this.opts.query(jid, node);
    } catch (err) {
      this.opts.log?.debug({ jid: jid.toString(), err: String(err) }, 'caps: disco#info request failed');
      return null;
    }
    const info = verifyCaps(query, hash, ver);
    if (!info) this.opts.log?.debug({ jid: jid.toString(), hash, ver }, 'caps: the answer does not verify; not cached (XEP-0115 §5.4)');
    return info;
  }

  /** §5.4 rule 2: an unsupported hash; the answer is associated with this JID only. */
  private async askOwn(jid: JID, announced: Announced): Promise<void> {
    const j = jid.toString();
    this.asking.add(j);
    try {
      const info = readCapsInfo(await this.opts.query(jid, `${announced.node}#${announced.ver}`));
      const cur = this.byJid.get(j);
      if (cur === announced) {
        cur.own = new Set(info.features);
        cur.notified = true;
        this.opts.onChange?.(jid, cur.own);
      }
    } catch (err) {
      this.opts.log?.debug({ jid: j, err: String(err) }, 'caps: disco#info request failed');
    } finally {
      this.asking.delete(j);
    }
    if (this.byJid.get(j) !== announced) this.consider(jid); // announced something else meanwhile
  }
}

function key(hash: string, ver: string): string {
  return `${hash}\n${ver}`;
}

const caches = new WeakMap<Router, CapsCache>();

/**
 * The caps cache of the server `router` belongs to (`ctx.router` in a module), or `undefined`
 * when the `caps` module is not loaded. Call it when needed, not at load time: modules load
 * in order.
 */
export function capsCacheOf(router: Router): CapsCache | undefined {
  return caches.get(router);
}

/** Time allowed to an entity to answer the caps disco#info request, ms. */
const QUERY_TIMEOUT = 10_000;

/**
 * Entity capabilities of clients (XEP-0115): a verified, in-memory cache of what the
 * resources sending presence support ({@link CapsCache}), fed by their presence (§6.1) and
 * filled by disco#info requests from the server (§6.2, checked per §5.4). Other modules read it
 * with `capsCacheOf(ctx.router)?.featuresOf(fullJid)` or listen to `caps/changed`.
 * The server's own caps (stream feature, caps node) are the `disco` module's.
 */
export const capsModule = defineModule({
  name: 'caps',
  xeps: ['XEP-0115'],
  load(ctx) {
    const cache = new CapsCache({
      log: ctx.log,
      query: async (jid, node) => {
        const res = await ctx.router.request(
          xml('iq', { type: 'get', from: ctx.host, to: jid.toString() }, xml('query', { xmlns: NS.DISCO_INFO, node })),
          QUERY_TIMEOUT,
        );
        const q = res.getChild('query', NS.DISCO_INFO);
        if (!q) throw new Error('the disco#info result has no <query/>');
        return q;
      },
      onChange: (jid, features) => {
        const ev: CapsChangedEvent = { jid, features };
        void ctx.router.hooks.emit(CAPS_EVENTS.changed, ev).catch((err) => ctx.log.error({ err }, 'caps/changed hook failed'));
      },
    });
    caches.set(ctx.router, cache);
    ctx.onUnload(() => {
      caches.delete(ctx.router);
    });

    // Presence broadcast by a local client (no 'to'), before the presence module handles it.
    ctx.on(
      'stanza/in',
      (ev: { stanza: XmlElement; session: Session }) => {
        const s = ev.stanza;
        if (s.name !== 'presence' || s.attrs.to !== undefined) return;
        const type = s.attrs.type;
        if (type === undefined) cache.observe(ev.session.jid, s.getChild('c', NS.CAPS));
        else if (type === 'unavailable') cache.forget(ev.session.jid);
      },
      10,
    );
    ctx.on('session/ended', (ev: { session: Session; replaced?: boolean }) => {
      // A session replaced by a new one with the same full JID leaves the new one's record alone.
      if (!ev.replaced) cache.forget(ev.session.jid);
    });
  },
});
