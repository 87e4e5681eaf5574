import { JID, StanzaError, errorReply, xml, type XmlElement } from '@parley/xmpp';
import { HANDLED } from '../core/hooks.ts';
import { defineModule, type ModuleContext } from '../core/module.ts';
import type { StanzaEvent } from '../core/router.ts';
import type { Session } from '../core/session.ts';
import { RosterStore, type RosterItem } from '../storage/index.ts';

/** The Blocking Command namespace (XEP-0191 §3.1, §9). */
export const NS_BLOCKING = 'urn:xmpp:blocking';
/** Namespace of the `<blocked/>` application error condition (XEP-0191 §3.3, §9). */
export const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';

/** `kv_store` store of the blocklist: one key per blocked JID (its prepared string: bare, full or domain), value `''`. */
const STORE = 'blocklist';
/** Session data key: the resource retrieved the blocklist, so it gets pushes (XEP-0191 §3.3, §3.4). */
const INTERESTED = 'blocking:interested';
/** Blocklists kept in memory, at most; beyond it, those of accounts with no session are dropped first. */
const CACHE_MAX = 10_000;

type Blocklist = Set<string>;

/**
 * Whether `jid` is blocked by a blocklist, with the matching rules of
 * XEP-0191 §6 (those of XEP-0016 §2.1): an item `user@domain/resource` matches
 * only that full JID, `user@domain` any resource of it, `domain/resource` only
 * that JID, and `domain` the domain itself and every JID at it.
 * Three set look-ups; items are stored prepared (RFC 7622), so string equality is JID equality.
 */
export function isBlocked(list: ReadonlySet<string>, jid: JID): boolean {
  if (list.size === 0) return false;
  return list.has(jid.toString()) || list.has(jid.bareString()) || list.has(jid.domain);
}

/** An `<item jid='…'/>` for each JID. */
const items = (jids: Iterable<string>) => [...jids].map((j) => xml('item', { jid: j }));

/**
 * Blocking Command (XEP-0191 v1.3):
 *
 * - Retrieve (§3.2): an iq get `<blocklist/>` with no `to` (or to one's own bare
 *   JID) returns the blocked JIDs; the resource becomes one that gets pushes.
 *   Anyone else → `forbidden`.
 * - Block (§3.3): iq set `<block/>` with one or more `<item jid='…'/>`; no item
 *   or an item without `jid` → `bad-request`; a `jid` that is not a JID →
 *   `jid-malformed`. Unblock (§3.4): `<unblock/>` with items; unblock all
 *   (§3.5): an empty `<unblock/>`. Each answers an empty result, then pushes
 *   the same command to every resource that retrieved the blocklist (from the
 *   account's bare JID, as roster pushes, RFC 6121 §2.1.6).
 * - The list is kept in `kv_store` (store `blocklist`, one key per prepared
 *   JID), lasts across sessions (§3.3), and goes with the account.
 * - On block, each available resource sends unavailable presence to the
 *   blocked JID when it may see the user's presence (a roster item with
 *   subscription `from` or `both`; §3.3, RFC 6121 §4.5); on unblock the
 *   current presence of each available resource goes to it the same way (§3.4).
 *   Subscriptions are left as they are ("polite blocking", §4).
 * - Inbound, from a blocked JID to the user (§3.3): presence of any type is
 *   dropped without an error; a message gets `service-unavailable` (error
 *   messages are dropped); iq get/set gets `service-unavailable`, iq
 *   result/error is dropped. The user appears offline to the blocked JID, and
 *   no message of it is stored offline.
 * - Outbound, from a session of the user to a blocked JID (§3.3): not routed;
 *   the session gets `not-acceptable` with `<blocked xmlns='urn:xmpp:blocking:errors'/>`.
 *   Presence the server sends on the user's behalf (broadcast, probes, logout
 *   unavailable) does not reach a blocked JID; subscription stanzas from a
 *   roster removal still do (RFC 6121 §2.5.2).
 * - Matching follows §6 ({@link isBlocked}); the user's own resources are never
 *   blocked from one another (§5, note), nor is the server itself (its bare
 *   domain) blocked from its users: a `domain` item for the user's own server
 *   blocks every other account and service there, but not the server's
 *   answers (disco, pings, …), which the user cannot do without.
 * - `urn:xmpp:blocking` is advertised in the server's disco#info (§3.1) and in
 *   the accounts' (the server answers for them).
 *
 * Hooks: `message/*`, `presence/*`, `iq/full` (and responses) at priority 100,
 * so before any delivery, offline storage (−500) or the router's rules (−1000);
 * a `stanza/in` filter at 100 for outbound stanzas and for iq get/set to a
 * local account's bare JID (whose hook names carry the payload namespace).
 * Each account's blocklist is kept in memory once read (on session start, or
 * when a stanza for an offline account needs it), so stanzas never wait on
 * storage after that. The memory copy is this process's: several nodes
 * sharing storage would each need invalidation (not done yet).
 */
export const blockingModule = defineModule({
  name: 'blocking',
  xeps: ['XEP-0191'],
  load(ctx) {
    const service = new BlockingService(ctx);
    ctx.onUnload(ctx.disco.host.addFeature(NS_BLOCKING));
    ctx.onUnload(ctx.disco.account.addFeature(NS_BLOCKING));
    service.install();
  },
});

/** The blocklists of the local accounts, their commands and their effects on routing (XEP-0191). */
class BlockingService {
  private readonly ctx: ModuleContext;
  private readonly roster: RosterStore;
  private readonly cache = new Map<string, Blocklist>();
  private readonly loading = new Map<string, Promise<Blocklist>>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Presence this module sends on block (§3.3), which the outbound rule must let through. */
  private readonly exempt = new WeakSet<XmlElement>();

  constructor(ctx: ModuleContext) {
    this.ctx = ctx;
    this.roster = new RosterStore(ctx.storage);
  }

  /** `true` when `jid` is an account of this host (not a component or another local domain). */
  private isAccount(jid: JID): boolean {
    return jid.local !== '' && jid.domain === this.ctx.host;
  }

  /** `true` for the server's own JID, never blocked: a list with the server's domain must not cut the user off from it. */
  private isServer(jid: JID): boolean {
    return jid.local === '' && jid.resource === '' && jid.domain === this.ctx.host;
  }

  // --- The memory copy ---------------------------------------------------

  /** The account's blocklist: from memory, or read once from storage (a promise then). */
  private list(user: string): Blocklist | Promise<Blocklist> {
    const hit = this.cache.get(user);
    if (hit) return hit;
    let p = this.loading.get(user);
    if (!p) {
      const loading = this.ctx.kv.all(this.ctx.host, user, STORE).then(
        (rows) => {
          if (this.loading.get(user) === loading) this.loading.delete(user);
          let set = this.cache.get(user);
          if (!set) {
            set = new Set(rows.keys());
            this.remember(user, set);
          }
          return set;
        },
        (err: unknown) => {
          if (this.loading.get(user) === loading) this.loading.delete(user);
          throw err;
        },
      );
      this.loading.set(user, loading);
      p = loading;
    }
    return p;
  }

  private remember(user: string, set: Blocklist): void {
    this.cache.delete(user);
    this.cache.set(user, set);
    if (this.cache.size <= CACHE_MAX) return;
    // Drop the oldest lists of accounts with no session (they are read again when needed).
    const target = Math.floor(CACHE_MAX * 0.9);
    for (const u of this.cache.keys()) {
      if (this.cache.size <= target) break;
      if (u !== user && !this.ctx.sessions.isOnline(JID.of(u, this.ctx.host))) this.cache.delete(u);
    }
  }

  /** Runs `fn` after the account's previous command, so two resources' commands do not interleave. */
  private serialized<T>(user: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(user) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.locks.set(user, next);
    void next.then(
      () => this.locks.get(user) === next && this.locks.delete(user),
      () => this.locks.get(user) === next && this.locks.delete(user),
    );
    return next;
  }

  /**
   * Calls `check` with the account's blocklist: synchronously when it is in
   * memory (the usual case), otherwise once it is read.
   */
  private withList<R>(user: string, check: (list: Blocklist) => R): R | Promise<R> {
    const l = this.list(user);
    return l instanceof Set ? check(l) : l.then(check);
  }

  // --- Wiring ------------------------------------------------------------

  install(): void {
    const { ctx } = this;
    ctx.iq('bare', NS_BLOCKING, {
      get: (ev) => this.get(ev),
      set: (ev) => this.set(ev),
    });

    // Read the list when a resource binds, before stanzas need it.
    ctx.on('session/started', (session: Session) => {
      const l = this.list(session.jid.local);
      if (l instanceof Promise) l.catch((err: unknown) => ctx.log.error({ err }, 'blocking: blocklist read failed'));
    });
    ctx.on('user/deleted', (ev: { username: string }) => {
      this.cache.delete(ev.username);
    });

    const PRIORITY = 100;
    for (const kind of ['bare', 'full'] as const) {
      ctx.on(`message/${kind}`, (ev: StanzaEvent) => this.inboundMessage(ev), PRIORITY);
      ctx.on(`presence/${kind}`, (ev: StanzaEvent) => this.presence(ev), PRIORITY);
      ctx.on(`iq/${kind}/response`, (ev: StanzaEvent) => this.inboundDrop(ev), PRIORITY);
    }
    ctx.on('iq/full', (ev: StanzaEvent) => this.inboundIq(ev), PRIORITY);
    ctx.on('route/remote', (ev: StanzaEvent) => this.serverPresenceOut(ev), PRIORITY);
    ctx.on('stanza/in', (ev: { stanza: XmlElement; session: Session }) => this.fromSession(ev.stanza, ev.session), PRIORITY);
  }

  // --- The commands (§3.2–§3.5) ------------------------------------------

  /** Throws `forbidden` unless the request comes from a session of the account itself. */
  private own(ev: StanzaEvent): string {
    if (!ev.origin || !this.isAccount(ev.to) || !ev.from.bare().equals(ev.to)) {
      throw new StanzaError('forbidden', 'a blocklist belongs to its account (XEP-0191 §3.2)');
    }
    return ev.to.local;
  }

  /** §3.2: the blocklist, and the resource becomes one that gets pushes. */
  private async get(ev: StanzaEvent): Promise<XmlElement> {
    const user = this.own(ev);
    const payload = ev.stanza.firstElement()!;
    if (payload.name !== 'blocklist') throw new StanzaError('bad-request', `expected <blocklist xmlns='${NS_BLOCKING}'/>`);
    const list = await this.list(user);
    ev.origin!.data.set(INTERESTED, true);
    return xml('blocklist', { xmlns: NS_BLOCKING }, items([...list].sort()));
  }

  /** The prepared JIDs of a command's items; `bad-request` without `jid`, `jid-malformed` when not a JID (RFC 7622). */
  private static parseItems(cmd: XmlElement): JID[] {
    const out = new Map<string, JID>();
    for (const item of cmd.getChildren('item', NS_BLOCKING)) {
      const raw = item.attrs.jid;
      if (raw === undefined) throw new StanzaError('bad-request', "an <item/> has no 'jid' attribute (required, XEP-0191 §10 schema)");
      const jid = JID.tryParse(raw);
      if (!jid) throw new StanzaError('jid-malformed', `'${raw}' is not a valid JID (RFC 7622)`);
      out.set(jid.toString(), jid);
    }
    return [...out.values()];
  }

  /** §3.3–§3.5: block, unblock, unblock all. */
  private async set(ev: StanzaEvent): Promise<null> {
    const user = this.own(ev);
    const cmd = ev.stanza.firstElement()!;
    if (cmd.name !== 'block' && cmd.name !== 'unblock') {
      throw new StanzaError('bad-request', `expected <block/> or <unblock/> in ${NS_BLOCKING}`);
    }
    const jids = BlockingService.parseItems(cmd);
    if (cmd.name === 'block' && jids.length === 0) {
      // §3.3: "If the <block/> element does not contain at least one <item/> child element, … bad-request".
      throw new StanzaError('bad-request', 'a <block/> command names at least one JID (XEP-0191 §3.3)');
    }
    await this.serialized(user, async () => {
      const list = await this.list(user);
      if (cmd.name === 'block') await this.block(user, list, jids);
      else await this.unblock(user, list, jids.length === 0 ? null : jids);
    });
    // The result goes first (it is sent when this returns), then the pushes (§3.3–§3.5 examples).
    const push = xml(cmd.name, { xmlns: NS_BLOCKING }, items(jids.map((j) => j.toString())));
    setImmediate(() => this.push(user, push));
    return null;
  }

  private async block(user: string, list: Blocklist, jids: JID[]): Promise<void> {
    const added = jids.filter((j) => !list.has(j.toString()));
    for (const j of added) await this.ctx.kv.set(this.ctx.host, user, STORE, j.toString(), '');
    // §3.3: unavailable presence to the newly blocked JIDs allowed to see the user's presence.
    const targets = this.presenceTargets(await this.roster.items(this.ctx.host, user), added);
    for (const s of this.ctx.sessions.resources(JID.of(user, this.ctx.host))) {
      if (!s.presence) continue;
      for (const to of targets) {
        const p = xml('presence', { type: 'unavailable', from: s.jid.toString(), to });
        this.exempt.add(p);
        this.ctx.router.route(p, null);
      }
    }
    for (const j of added) list.add(j.toString());
    this.remember(user, list);
  }

  /** `jids` `null`: unblock all (§3.5). */
  private async unblock(user: string, list: Blocklist, jids: JID[] | null): Promise<void> {
    const removed = jids === null ? [...list].map((s) => JID.parse(s)) : jids.filter((j) => list.has(j.toString()));
    if (jids === null) await this.ctx.kv.clear(this.ctx.host, user, STORE);
    else for (const j of removed) await this.ctx.kv.delete(this.ctx.host, user, STORE, j.toString());
    for (const j of removed) list.delete(j.toString());
    this.remember(user, list);
    // §3.4: the current presence to the unblocked JIDs allowed to see it (and not still blocked by another item).
    const targets = this.presenceTargets(await this.roster.items(this.ctx.host, user), removed).filter(
      (t) => !isBlocked(list, JID.parse(t)),
    );
    for (const s of this.ctx.sessions.resources(JID.of(user, this.ctx.host))) {
      if (!s.presence) continue;
      for (const to of targets) {
        const p = s.presence.clone();
        p.attrs.from = s.jid.toString();
        p.attrs.to = to;
        delete p.attrs.id;
        this.ctx.router.route(p, null);
      }
    }
  }

  /**
   * Where presence goes when `changed` JIDs are blocked or unblocked: each
   * roster contact with subscription `from` or `both` (RFC 6121 §4.5.2) that an
   * item matches (§6) — or the item itself when it names one resource of such a contact.
   */
  private presenceTargets(roster: RosterItem[], changed: JID[]): string[] {
    const out = new Set<string>();
    for (const item of roster) {
      if (item.subscription !== 'from' && item.subscription !== 'both') continue;
      const contact = JID.tryParse(item.jid);
      if (!contact) continue;
      for (const j of changed) {
        if (isBlocked(new Set([j.toString()]), contact)) out.add(item.jid);
        else if (j.resource !== '' && j.bare().equals(contact)) out.add(j.toString());
      }
    }
    return [...out];
  }

  /** A block or unblock push (§3.3–§3.5) to every resource that retrieved the blocklist. */
  private push(user: string, cmd: XmlElement): void {
    const bare = JID.of(user, this.ctx.host).toString();
    for (const s of this.ctx.sessions.resources(JID.of(user, this.ctx.host))) {
      if (s.data.get(INTERESTED) !== true) continue;
      const id = `block-push-${Math.random().toString(36).slice(2, 10)}`;
      s.send(xml('iq', { type: 'set', id, from: bare, to: s.jid.toString() }, cmd.clone()));
    }
  }

  // --- Effects on stanzas (§3.3) -----------------------------------------

  /** Whether the account addressed by `ev.to` blocks the sender (never its own resources, §5 note). */
  private blocksSender(ev: StanzaEvent): boolean | Promise<boolean> {
    if (!this.isAccount(ev.to) || ev.from.bare().equals(ev.to.bare()) || this.isServer(ev.from)) return false;
    // The hot path (every delivery): a list in memory, usually empty; no closure is made.
    const l = this.list(ev.to.local);
    if (l instanceof Set) return l.size !== 0 && isBlocked(l, ev.from);
    return l.then((list) => isBlocked(list, ev.from));
  }

  /** Messages from a blocked JID: `service-unavailable` (error messages dropped), never delivered nor stored. */
  private inboundMessage(ev: StanzaEvent): boolean | void | Promise<boolean | void> {
    const b = this.blocksSender(ev);
    if (b === false) return;
    if (b === true) return refuseMessage(ev);
    return b.then((blocked) => (blocked ? refuseMessage(ev) : undefined));
  }

  /** iq get/set to a full JID from a blocked JID: `service-unavailable`. */
  private inboundIq(ev: StanzaEvent): boolean | void | Promise<boolean | void> {
    const b = this.blocksSender(ev);
    if (b === false) return;
    if (b === true) throw new StanzaError('service-unavailable');
    return b.then((blocked) => {
      if (blocked) throw new StanzaError('service-unavailable');
    });
  }

  /** iq result/error from a blocked JID: dropped silently. */
  private inboundDrop(ev: StanzaEvent): boolean | void | Promise<boolean | void> {
    const b = this.blocksSender(ev);
    return typeof b === 'boolean' ? b || undefined : b.then((x) => x || undefined);
  }

  /**
   * Presence to a local account: dropped without an answer when the recipient
   * blocks the sender (§3.3), or when a local sender blocks the recipient and
   * the server is sending the sender's availability on its behalf.
   */
  private presence(ev: StanzaEvent): boolean | void | Promise<boolean | void> {
    const inbound = this.blocksSender(ev);
    if (inbound === true) return HANDLED;
    const out = this.serverPresenceOut(ev);
    if (inbound === false) return out;
    return inbound.then((b) => (b ? HANDLED : out));
  }

  /** Availability presence (no type, `unavailable`, `probe`) the server routes for a user to a JID the user blocks: dropped. */
  private serverPresenceOut(ev: StanzaEvent): boolean | void | Promise<boolean | void> {
    const { stanza } = ev;
    if (stanza.name !== 'presence' || ev.origin !== null || !this.isAccount(ev.from) || this.exempt.has(stanza)) return;
    const type = stanza.attrs.type;
    if (type !== undefined && type !== 'unavailable' && type !== 'probe') return;
    if (ev.from.bare().equals(ev.to.bare())) return;
    return this.withList(ev.from.local, (list) => (isBlocked(list, ev.to) ? HANDLED : undefined));
  }

  /**
   * `stanza/in`: a stanza from a session of the user to a JID the user blocks
   * gets `not-acceptable` + `<blocked/>` and is not routed (§3.3). An iq get/set
   * to another local account's bare JID that blocks the sender gets
   * `service-unavailable` here, as the server answers such requests itself.
   */
  private fromSession(stanza: XmlElement, session: Session): boolean | void | Promise<boolean | void> {
    const toAttr = stanza.attrs.to;
    if (toAttr === undefined) return;
    const user = session.jid.local;
    const outbound = (list: Blocklist): boolean | void | Promise<boolean | void> => {
      if (list.size > 0) {
        const to = JID.tryParse(toAttr);
        if (to && !to.bare().equals(session.jid.bare()) && !this.isServer(to) && isBlocked(list, to)) {
          // §3.3 example: type 'cancel' (the block stands until the user lifts it).
          const err = new StanzaError('not-acceptable', 'you have blocked this JID (XEP-0191 §3.3)', 'cancel', xml('blocked', { xmlns: NS_BLOCKING_ERRORS }));
          const reply = errorReply(stanza, err);
          if (reply) session.send(reply);
          return HANDLED;
        }
      }
      return this.inboundIqToBare(stanza, session);
    };
    const l = this.list(user);
    return l instanceof Set ? outbound(l) : l.then(outbound);
  }

  private inboundIqToBare(stanza: XmlElement, session: Session): boolean | void | Promise<boolean | void> {
    if (stanza.name !== 'iq') return;
    const type = stanza.attrs.type;
    if (type !== 'get' && type !== 'set') return;
    const to = JID.tryParse(stanza.attrs.to!);
    if (!to || !to.isBare() || !this.isAccount(to) || to.equals(session.jid.bare())) return;
    return this.withList(to.local, (list) => {
      if (!isBlocked(list, session.jid)) return;
      const reply = errorReply(stanza, new StanzaError('service-unavailable'));
      if (reply) session.send(reply);
      return HANDLED;
    });
  }
}

/** A message from a blocked JID (XEP-0191 §3.3): errors are dropped, anything else refused with `service-unavailable`. */
function refuseMessage(ev: StanzaEvent): boolean {
  if (ev.stanza.attrs.type === 'error') return HANDLED;
  throw new StanzaError('service-unavailable');
}
