import type { Kysely } from 'kysely';
import type { Database } from './database.ts';
import type { Schema } from './schema.ts';

/** The version the next change of an account's roster gets: the highest version so far (tombstones included) + 1. */
async function nextVersion(db: Kysely<Schema>, host: string, username: string): Promise<number> {
  const r = await db
    .selectFrom('roster_items')
    .select((eb) => eb.fn.max<number | null>('version').as('v'))
    .where('host', '=', host)
    .where('username', '=', username)
    .executeTakeFirst();
  return Number(r?.v ?? 0) + 1;
}

/** A subscription state (RFC 6121 §2.1.2.5). */
export type Subscription = 'none' | 'to' | 'from' | 'both';

/** A roster item (RFC 6121 §2.1.2). */
export interface RosterItem {
  /** The contact's bare JID. */
  jid: string;
  name: string | null;
  subscription: Subscription;
  /** `true` while the user's subscription request is pending-out (`ask='subscribe'`, §2.1.2.2). */
  ask: boolean;
  /** `true` when the user pre-approved the contact's subscription request (§3.4). */
  approved: boolean;
  groups: string[];
}

/** A change since a roster version: the item, or `removed` (XEP-0237 §2.4). */
export interface RosterChange {
  item: RosterItem;
  removed: boolean;
  version: number;
}

/**
 * Rosters (RFC 6121 §2) with versions (XEP-0237): each change gets the next
 * version number of the account's roster; removals leave a tombstone row so a
 * client with an older version can be sent the removal.
 */
export class RosterStore {
  constructor(private db: Database) {}

  private base(host: string, username: string) {
    return this.db.db.selectFrom('roster_items').where('host', '=', host).where('username', '=', username);
  }

  private static toItem(r: { jid: string; name: string | null; subscription: string; ask: string | null; approved: number; groups: string }): RosterItem {
    return {
      jid: r.jid,
      name: r.name,
      subscription: (r.subscription === 'remove' ? 'none' : r.subscription) as Subscription,
      ask: r.ask === 'subscribe',
      approved: r.approved === 1,
      groups: JSON.parse(r.groups) as string[],
    };
  }

  /** The roster (without tombstones), sorted by JID. */
  async items(host: string, username: string): Promise<RosterItem[]> {
    const rows = await this.base(host, username).selectAll().where('subscription', '!=', 'remove').orderBy('jid').execute();
    return rows.map(RosterStore.toItem);
  }

  /** One item, or `null`. */
  async get(host: string, username: string, jid: string): Promise<RosterItem | null> {
    const r = await this.base(host, username).selectAll().where('jid', '=', jid).where('subscription', '!=', 'remove').executeTakeFirst();
    return r ? RosterStore.toItem(r) : null;
  }

  /** Number of items. */
  async count(host: string, username: string): Promise<number> {
    const r = await this.base(host, username)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('subscription', '!=', 'remove')
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** The current roster version (0 for a roster never changed). */
  async version(host: string, username: string): Promise<number> {
    return (await nextVersion(this.db.db, host, username)) - 1;
  }

  /** Items changed (or removed) after `since`, in version order (XEP-0237 §2.4). */
  async changesSince(host: string, username: string, since: number): Promise<RosterChange[]> {
    const rows = await this.base(host, username).selectAll().where('version', '>', since).orderBy('version').execute();
    return rows.map((r) => ({ item: RosterStore.toItem(r), removed: r.subscription === 'remove', version: Number(r.version) }));
  }

  /** Writes an item; returns the new roster version. */
  async put(host: string, username: string, item: RosterItem): Promise<number> {
    return this.db.db.transaction().execute(async (trx) => {
      const version = await nextVersion(trx, host, username);
      const row = {
        name: item.name,
        subscription: item.subscription,
        ask: item.ask ? 'subscribe' : null,
        approved: item.approved ? 1 : 0,
        groups: JSON.stringify(item.groups),
        version,
      };
      await trx
        .insertInto('roster_items')
        .values({ host, username, jid: item.jid, ...row })
        .onConflict((oc) => oc.columns(['host', 'username', 'jid']).doUpdateSet(row))
        .execute();
      return version;
    });
  }

  /** Removes an item (leaving a tombstone); returns the new roster version, or `null` if there was no item. */
  async remove(host: string, username: string, jid: string): Promise<number | null> {
    const existing = await this.get(host, username, jid);
    if (!existing) return null;
    return this.db.db.transaction().execute(async (trx) => {
      const version = await nextVersion(trx, host, username);
      await trx
        .updateTable('roster_items')
        .set({ subscription: 'remove', ask: null, approved: 0, name: null, groups: '[]', version })
        .where('host', '=', host)
        .where('username', '=', username)
        .where('jid', '=', jid)
        .execute();
      return version;
    });
  }
}
