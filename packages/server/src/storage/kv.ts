import type { Database } from './database.ts';

/**
 * Per-account key/value storage for modules (`kv_store`): private XML storage
 * (XEP-0049), vCard (XEP-0054), last activity (XEP-0012), block lists
 * (XEP-0191), pending subscription requests (RFC 6121 §3.1.3) and the like.
 * `store` names the module's set of keys; values are strings the module
 * serializes. Rows go with the account (ON DELETE CASCADE).
 */
export class KvStore {
  private db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  /** The value, or `null`. */
  async get(host: string, username: string, store: string, key: string): Promise<string | null> {
    const row = await this.db.db
      .selectFrom('kv_store')
      .select('value')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('store', '=', store)
      .where('key', '=', key)
      .executeTakeFirst();
    return row ? row.value : null;
  }

  /** Sets a value (insert or replace). The account must exist (foreign key). */
  async set(host: string, username: string, store: string, key: string, value: string): Promise<void> {
    await this.db.db
      .insertInto('kv_store')
      .values({ host, username, store, key, value })
      .onConflict((oc) => oc.columns(['host', 'username', 'store', 'key']).doUpdateSet({ value }))
      .execute();
  }

  /** Deletes a value; returns whether it existed. */
  async delete(host: string, username: string, store: string, key: string): Promise<boolean> {
    const r = await this.db.db
      .deleteFrom('kv_store')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('store', '=', store)
      .where('key', '=', key)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Every key → value of one store of an account, sorted by key. */
  async all(host: string, username: string, store: string): Promise<Map<string, string>> {
    const rows = await this.db.db
      .selectFrom('kv_store')
      .select(['key', 'value'])
      .where('host', '=', host)
      .where('username', '=', username)
      .where('store', '=', store)
      .orderBy('key')
      .execute();
    return new Map(rows.map((r) => [r.key, r.value]));
  }

  /** Deletes every key of one store of an account; returns how many. */
  async clear(host: string, username: string, store: string): Promise<number> {
    const r = await this.db.db
      .deleteFrom('kv_store')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('store', '=', store)
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
