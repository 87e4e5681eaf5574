import type { Kysely } from 'kysely';
import type { Database } from './database.ts';
import { PreparedQuery } from './prepared.ts';
import type { Schema } from './schema.ts';

/** A stored offline message (XEP-0160). */
export interface OfflineMessage {
  id: string;
  /** Arrival time, ms since epoch. */
  stamp: number;
  /** The serialized message stanza. */
  stanza: string;
}

let seq = 0;

/** Offline message storage (XEP-0160), in arrival order; rows go with the account. */
export class OfflineStore {
  // Read at every initial presence, written for every message to an offline account: built once (prepared.ts).
  readonly #list: PreparedQuery<[string, string], { id: string; stamp: number; stanza: string }>;
  readonly #add: PreparedQuery<[string, string, string, number, string], unknown>;

  constructor(private db: Database) {
    this.#list = new PreparedQuery(db.db, (q: Kysely<Schema>, host: string, username: string) =>
      q.selectFrom('offline_messages').select(['id', 'stamp', 'stanza']).where('host', '=', host).where('username', '=', username).orderBy('id'),
    );
    this.#add = new PreparedQuery(db.db, (q: Kysely<Schema>, host: string, username: string, id: string, stamp: number, stanza: string) =>
      q.insertInto('offline_messages').values({ host, username, id, stamp, stanza }),
    );
  }

  /** Number of stored messages for an account. */
  async count(host: string, username: string): Promise<number> {
    const r = await this.db.db
      .selectFrom('offline_messages')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Stores a message; returns its id. */
  async add(host: string, username: string, stanza: string, stamp = Date.now()): Promise<string> {
    seq = (seq + 1) % 1_000_000;
    const id = `${String(stamp).padStart(15, '0')}-${String(seq).padStart(6, '0')}`;
    await this.#add.rows(host, username, id, stamp, stanza);
    return id;
  }

  /** The stored messages, oldest first. */
  async list(host: string, username: string): Promise<OfflineMessage[]> {
    const rows = await this.#list.rows(host, username);
    return rows.map((r) => ({ id: r.id, stamp: Number(r.stamp), stanza: r.stanza }));
  }

  /** Deletes messages by id; returns how many were deleted. */
  async delete(host: string, username: string, ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const r = await this.db.db
      .deleteFrom('offline_messages')
      .where('host', '=', host)
      .where('username', '=', username)
      .where('id', 'in', ids)
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
