import type { Kysely } from 'kysely';
import type { Database } from './database.ts';
import { PreparedQuery } from './prepared.ts';
import type { Schema } from './schema.ts';

/** The reads and writes modules make per stanza and per login, built once (prepared.ts). */
function kvQueries(db: Kysely<Schema>) {
  const keyed = (q: Kysely<Schema>, host: string, username: string, store: string) =>
    q.selectFrom('kv_store').where('host', '=', host).where('username', '=', username).where('store', '=', store);
  return {
    get: new PreparedQuery(db, (q, host: string, username: string, store: string, key: string) =>
      keyed(q, host, username, store).select('value').where('key', '=', key),
    ),
    all: new PreparedQuery(db, (q, host: string, username: string, store: string) =>
      keyed(q, host, username, store).select(['key', 'value']).orderBy('key'),
    ),
    set: new PreparedQuery(db, (q, host: string, username: string, store: string, key: string, value: string) =>
      q
        .insertInto('kv_store')
        .values({ host, username, store, key, value })
        .onConflict((oc) => oc.columns(['host', 'username', 'store', 'key']).doUpdateSet({ value })),
    ),
    delete: new PreparedQuery(db, (q, host: string, username: string, store: string, key: string) =>
      q.deleteFrom('kv_store').where('host', '=', host).where('username', '=', username).where('store', '=', store).where('key', '=', key),
    ),
  };
}

/**
 * Per-account key/value storage for modules (`kv_store`): private XML storage
 * (XEP-0049), vCard (XEP-0054), last activity (XEP-0012), block lists
 * (XEP-0191), pending subscription requests (RFC 6121 §3.1.3) and the like.
 * `store` names the module's set of keys; values are strings the module
 * serializes. Rows go with the account (ON DELETE CASCADE).
 */
export class KvStore {
  private db: Database;
  readonly #q: ReturnType<typeof kvQueries>;

  constructor(db: Database) {
    this.db = db;
    this.#q = kvQueries(db.db);
  }

  /** The value, or `null`. */
  async get(host: string, username: string, store: string, key: string): Promise<string | null> {
    const row = await this.#q.get.first(host, username, store, key);
    return row ? row.value : null;
  }

  /** Sets a value (insert or replace). The account must exist (foreign key). */
  async set(host: string, username: string, store: string, key: string, value: string): Promise<void> {
    await this.#q.set.rows(host, username, store, key, value);
  }

  /** Deletes a value; returns whether it existed. */
  async delete(host: string, username: string, store: string, key: string): Promise<boolean> {
    const r = await this.#q.delete.run(this.db.db, host, username, store, key);
    return Number(r.numAffectedRows ?? 0) > 0;
  }

  /** Every key → value of one store of an account, sorted by key. */
  async all(host: string, username: string, store: string): Promise<Map<string, string>> {
    const rows = await this.#q.all.rows(host, username, store);
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
