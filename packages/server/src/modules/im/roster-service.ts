import { JID, NS, xml, type XmlElement } from '@parley/xmpp';
import type { ModuleContext } from '../../core/module.ts';
import type { Session } from '../../core/session.ts';
import { RosterStore, type RosterItem } from '../../storage/index.ts';

export const NS_ROSTER = 'jabber:iq:roster';

/** Session data key: the resource requested the roster (RFC 6121 §2.1.6: an "interested resource"). */
export const INTERESTED = 'roster:interested';

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

/**
 * Rosters of the local accounts: reads, changes with roster pushes to every
 * interested resource (RFC 6121 §2.1.6) carrying the new version (XEP-0237).
 */
export class RosterService {
  readonly store: RosterStore;
  private ctx: ModuleContext;

  constructor(ctx: ModuleContext) {
    this.ctx = ctx;
    this.store = new RosterStore(ctx.storage);
  }

  get(username: string, jid: string): Promise<RosterItem | null> {
    return this.store.get(this.ctx.host, username, jid);
  }

  items(username: string): Promise<RosterItem[]> {
    return this.store.items(this.ctx.host, username);
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
    const version = await this.store.put(this.ctx.host, username, item);
    this.push(username, itemElement(item), version);
    return item;
  }

  /** Removes an item and pushes the removal; returns the removed item or `null`. */
  async remove(username: string, jid: string): Promise<RosterItem | null> {
    const before = await this.get(username, jid);
    if (!before) return null;
    const version = await this.store.remove(this.ctx.host, username, jid);
    if (version !== null) this.push(username, itemElement(before, true), version);
    return before;
  }

  /** Sends a roster push (RFC 6121 §2.1.6) to every interested resource of the account. */
  push(username: string, item: XmlElement, version: number, only?: Session): void {
    const bare = JID.of(username, this.ctx.host);
    const targets = only ? [only] : this.ctx.sessions.resources(bare).filter((s) => s.data.get(INTERESTED) === true);
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
