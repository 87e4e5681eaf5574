import { JID, NS, xml, type XmlElement } from '@parley/xmpp';
import type { ModuleContext } from '../../core/module.ts';
import type { Session } from '../../core/session.ts';
import { RosterStore, type RosterItem } from '../../storage/index.ts';

export const NS_ROSTER = 'jabber:iq:roster';

/** The `<item/>` of a roster item (RFC 6121 §2.1.2); `remove` for a removal push. */
export function itemElement(item: RosterItem, remove = false): XmlElement {
  return xml(
    'item',
    {
      jid: item.jid,
      name: remove ? undefined : (item.name ?? undefined),
      subscription: remove ? 'remove' : item.subscription,
      ask: !remove && item.ask ? 'subscribe' : undefined,
      approved: !remove && item.approved ? 'true' : undefined,
    },
    remove ? [] : item.groups.map((g) => xml('group', null, g)),
  );
}

/** A fresh item for a contact (subscription none). */
export function newItem(jid: string): RosterItem {
  return { jid, name: null, subscription: 'none', ask: false, approved: false, groups: [] };
}

/** An account's roster as read from storage: the items sorted by JID, and its version (XEP-0237). */
interface LoadedRoster {
  items: RosterItem[];
  version: number;
  /** Items by JID, made on the first lookup in a roster of more than {@link INDEX_FROM} items. */
  byJid?: Map<string, RosterItem>;
}

/** Rosters up to this size are searched item by item (no index kept for an idle session). */
const INDEX_FROM = 16;

function find(r: LoadedRoster, jid: string): RosterItem | null {
  if (r.items.length <= INDEX_FROM) return r.items.find((i) => i.jid === jid) ?? null;
  r.byJid ??= new Map(r.items.map((i) => [i.jid, i]));
  return r.byJid.get(jid) ?? null;
}

/**
 * Rosters of the local accounts: reads, changes with roster pushes to every
 * interested resource (RFC 6121 §2.1.6) carrying the new version (XEP-0237).
 *
 * The roster of an account with a session on this node is read from storage once and
 * kept (a login otherwise reads it for the roster get, again for initial presence, and
 * again at logout; Prosody keeps online users' rosters the same way). Rosters change only
 * through this service: a change drops the kept copy after it is written, so the next
 * read loads it again, and the copy goes when the account's last session ends. Accounts
 * without a session are read from storage every time. Items handed out are shared: do not
 * modify them.
 */
export class RosterService {
  readonly store: RosterStore;
  private ctx: ModuleContext;
  /** Account (localpart) → its roster (while being read: the read), for accounts with a session. */
  readonly #online = new Map<string, LoadedRoster | Promise<LoadedRoster>>();
  /**
   * The sessions that requested the roster (RFC 6121 §2.1.6: "interested resources"), the
   * only ones that get roster pushes. A WeakSet, not an entry in `session.data`: that would
   * give nearly every session a Map of its own (~200 bytes) for one flag.
   */
  readonly interested = new WeakSet<Session>();

  constructor(ctx: ModuleContext) {
    this.ctx = ctx;
    this.store = new RosterStore(ctx.storage);
  }

  async get(username: string, jid: string): Promise<RosterItem | null> {
    if (!this.#online.has(username) && !this.#hasSession(username)) return this.store.get(this.ctx.host, username, jid);
    return find(await this.#load(username), jid);
  }

  async items(username: string): Promise<RosterItem[]> {
    return (await this.#load(username)).items;
  }

  /** The roster's current version (XEP-0237; 0 for a roster never changed). */
  async version(username: string): Promise<number> {
    return (await this.#load(username)).version;
  }

  /** Forgets the kept roster of `username` unless the account still has a session (after its sessions end, or its deletion). */
  release(username: string, always = false): void {
    if (always || !this.#hasSession(username)) this.#online.delete(username);
  }

  #hasSession(username: string): boolean {
    return this.ctx.sessions.hasAccount(`${username}@${this.ctx.host}`);
  }

  #load(username: string): LoadedRoster | Promise<LoadedRoster> {
    const kept = this.#online.get(username);
    if (kept !== undefined) return kept;
    const loading: Promise<LoadedRoster> = this.store.load(this.ctx.host, username);
    if (this.#hasSession(username)) {
      this.#online.set(username, loading);
      loading.then(
        // Kept as the roster itself once read, unless a change dropped the read meanwhile.
        (roster) => {
          if (this.#online.get(username) === loading) this.#online.set(username, roster);
        },
        // A failed read is not kept: the next read tries again.
        () => {
          if (this.#online.get(username) === loading) this.#online.delete(username);
        },
      );
    }
    return loading;
  }

  /**
   * Applies `change` to the item for `jid` (created when missing, unless
   * `create` is false) and pushes the result when it changed. Returns the item
   * after the change, or `null` when there was none and none was created.
   */
  async update(username: string, jid: string, change: (item: RosterItem) => void, create = true): Promise<RosterItem | null> {
    const before = await this.get(username, jid);
    if (!before && !create) return null;
    const item: RosterItem = before ? { ...before, groups: [...before.groups] } : newItem(jid);
    change(item);
    if (before && JSON.stringify(before) === JSON.stringify(item)) return item;
    let version: number;
    try {
      version = await this.store.put(this.ctx.host, username, item);
    } finally {
      // After the write (committed or failed): a read that began before it is not kept.
      this.#online.delete(username);
    }
    this.push(username, itemElement(item), version);
    return item;
  }

  /** Removes an item and pushes the removal; returns the removed item or `null`. */
  async remove(username: string, jid: string): Promise<RosterItem | null> {
    const before = await this.get(username, jid);
    if (!before) return null;
    let version: number | null;
    try {
      version = await this.store.remove(this.ctx.host, username, jid);
    } finally {
      this.#online.delete(username);
    }
    if (version !== null) this.push(username, itemElement(before, true), version);
    return before;
  }

  /** Sends a roster push (RFC 6121 §2.1.6) to every interested resource of the account. */
  push(username: string, item: XmlElement, version: number, only?: Session): void {
    const bare = JID.of(username, this.ctx.host);
    const targets = only ? [only] : this.ctx.sessions.resources(bare).filter((s) => this.interested.has(s));
    for (const s of targets) {
      s.send(
        xml(
          'iq',
          { type: 'set', id: `push-${version}-${Math.random().toString(36).slice(2, 8)}`, to: s.jid.toString(), from: bare.toString() },
          xml('query', { xmlns: NS_ROSTER, ver: String(version) }, item.clone()),
        ),
      );
    }
  }
}

export { NS };
