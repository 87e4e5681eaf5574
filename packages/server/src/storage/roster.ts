import type { Kysely } from 'kysely';
import type { Database } from './database.ts';
import { PreparedQuery } from './prepared.ts';
import type { Schema } from './schema.ts';

/** The roster reads of every login and presence broadcast, and the writes of every change: built once (prepared.ts). */
function rosterQueries(db: Kysely<Schema>) {
  const account = (q: Kysely<Schema>, host: string, username: string) =>
    q.selectFrom('roster_items').where('host', '=', host).where('username', '=', username);
  return {
    /** Every row, tombstones included, by JID: the roster and its version in one read. */
    rows: new PreparedQuery(db, (q, host: string, username: string) => account(q, host, username).selectAll().orderBy('jid')),
    items: new PreparedQuery(db, (q, host: string, username: string) =>
      account(q, host, username).selectAll().where('subscription', '!=', 'remove').orderBy('jid'),
    ),
    get: new PreparedQuery(db, (q, host: string, username: string, jid: string) =>
      account(q, host, username).selectAll().where('jid', '=', jid).where('subscription', '!=', 'remove'),
    ),
    /** The highest version so far, tombstones included (null for a roster never changed). */
    version: new PreparedQuery(db, (q, host: string, username: string) =>
      account(q, host, username).select((eb) => eb.fn.max<number | null>('version').as('v')),
    ),
    changesSince: new PreparedQuery(db, (q, host: string, username: string, since: number) =>
      account(q, host, username).selectAll().where('version', '>', since).orderBy('version'),
    ),
    put: new PreparedQuery(
      db,
      (q, host: string, username: string, jid: string, name: string | null, subscription: string, ask: string | null, approved: number, groups: string, version: number) => {
        const row = { name, subscription, ask, approved, groups, version };
        return q
          .insertInto('roster_items')
          .values({ host, username, jid, ...row })
          .onConflict((oc) => oc.columns(['host', 'username', 'jid']).doUpdateSet(row));
      },
    ),
    tombstone: new PreparedQuery(db, (q, host: string, username: string, jid: string, version: number) =>
      q
        .updateTable('roster_items')
        .set({ subscription: 'remove', ask: null, approved: 0, name: null, groups: '[]', version })
        .where('host', '=', host)
        .where('username', '=', username)
        .where('jid', '=', jid),
    ),
  };
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
  readonly #q: ReturnType<typeof rosterQueries>;

  constructor(private db: Database) {
    this.#q = rosterQueries(db.db);
  }

  /** The version the next change of an account's roster gets: the highest version so far (tombstones included) + 1. */
  async #nextVersion(runner: Kysely<Schema>, host: string, username: string): Promise<number> {
    const r = (await this.#q.version.run(runner, host, username)).rows[0];
    return Number(r?.v ?? 0) + 1;
  }

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
    const rows = await this.#q.items.rows(host, username);
    return rows.map(RosterStore.toItem);
  }

  /** The roster (without tombstones, sorted by JID) and its current version (0 for a roster never changed), in one read. */
  async load(host: string, username: string): Promise<{ items: RosterItem[]; version: number }> {
    const rows = await this.#q.rows.rows(host, username);
    const items: RosterItem[] = [];
    let version = 0;
    for (const r of rows) {
      const v = Number(r.version);
      if (v > version) version = v;
      if (r.subscription !== 'remove') items.push(RosterStore.toItem(r));
    }
    return { items, version };
  }

  /** One item, or `null`. */
  async get(host: string, username: string, jid: string): Promise<RosterItem | null> {
    const r = await this.#q.get.first(host, username, jid);
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
    return (await this.#nextVersion(this.db.db, host, username)) - 1;
  }

  /** Items changed (or removed) after `since`, in version order (XEP-0237 §2.4). */
  async changesSince(host: string, username: string, since: number): Promise<RosterChange[]> {
    const rows = await this.#q.changesSince.rows(host, username, since);
    return rows.map((r) => ({ item: RosterStore.toItem(r), removed: r.subscription === 'remove', version: Number(r.version) }));
  }

  /** Writes an item; returns the new roster version. */
  async put(host: string, username: string, item: RosterItem): Promise<number> {
    return this.db.db.transaction().execute(async (trx) => {
      const version = await this.#nextVersion(trx, host, username);
      const ask = item.ask ? 'subscribe' : null;
      await this.#q.put.run(trx, host, username, item.jid, item.name, item.subscription, ask, item.approved ? 1 : 0, JSON.stringify(item.groups), version);
      return version;
    });
  }

  /** Removes an item (leaving a tombstone); returns the new roster version, or `null` if there was no item. */
  async remove(host: string, username: string, jid: string): Promise<number | null> {
    const existing = await this.get(host, username, jid);
    if (!existing) return null;
    return this.db.db.transaction().execute(async (trx) => {
      const version = await this.#nextVersion(trx, host, username);
      await this.#q.tombstone.run(trx, host, username, jid, version);
      return version;
    });
  }
}
