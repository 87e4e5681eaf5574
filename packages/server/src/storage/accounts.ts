/**
 * The account store: which accounts exist on a host, and their SCRAM credentials.
 *
 * Usernames are prepared by the caller (PRECIS UsernameCaseMapped, RFC 8265 §3.3); this
 * store compares them byte-wise and never re-prepares them. Passwords are stored only as
 * SCRAM salted keys (RFC 5802 §3, RFC 7677; ARCHITECTURE.md §4).
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './database.ts';
import type { Schema } from './schema.ts';
import { PreparedQuery } from './prepared.ts';

/**
 * The SCRAM salted keys of an account for one hash function (RFC 5802 §3). Same shape as
 * `ScramCredentials` of `@parley/xmpp`.
 */
export interface ScramCredentialsRow {
  /** Hash function as named in the SASL mechanism: `'SHA-1'`, `'SHA-256'`, `'SHA-512'`. */
  hash: string;
  /** Salt, base64. */
  salt: string;
  /** PBKDF2 iteration count, a positive integer. */
  iterations: number;
  /** StoredKey = H(ClientKey), base64. */
  storedKey: string;
  /** ServerKey = HMAC(SaltedPassword, "Server Key"), base64. */
  serverKey: string;
}

/**
 * The account already exists (XMPP condition `conflict`, as in XEP-0077 §3.1 in-band
 * registration and XEP-0133 §4.1 add user).
 */
export class AccountExistsError extends Error {
  readonly condition = 'conflict' as const;
  constructor(
    readonly host: string,
    readonly username: string,
    options?: { cause?: unknown },
  ) {
    super(`account ${username}@${host} already exists`, options);
    this.name = 'AccountExistsError';
  }
}

/** The account does not exist (XMPP condition `item-not-found`, RFC 6120 §8.3.3.7). */
export class AccountNotFoundError extends Error {
  readonly condition = 'item-not-found' as const;
  constructor(
    readonly host: string,
    readonly username: string,
    options?: { cause?: unknown },
  ) {
    super(`account ${username}@${host} does not exist`, options);
    this.name = 'AccountNotFoundError';
  }
}

/** The queries run on every login (and by last activity, registration …), built once (prepared.ts). */
function accountQueries(db: Kysely<Schema>) {
  return {
    exists: new PreparedQuery(db, (q, host: string, username: string) =>
      q.selectFrom('accounts').select('username').where('host', '=', host).where('username', '=', username),
    ),
    credentials: new PreparedQuery(db, (q, host: string, username: string, hash: string) =>
      q
        .selectFrom('scram_credentials')
        .select(['hash', 'salt', 'iterations', 'stored_key', 'server_key'])
        .where('host', '=', host)
        .where('username', '=', username)
        .where('hash', '=', hash),
    ),
  };
}

/**
 * Accounts and their SCRAM credentials, on SQLite or PostgreSQL.
 *
 * Every method takes the served `host` and the prepared `username` (localpart) as given;
 * they are compared byte-wise. Database failures other than those listed are the driver's
 * errors, rethrown as they are.
 */
export class AccountStore {
  readonly #database: Database;
  readonly #q: ReturnType<typeof accountQueries>;

  /** `db`: an open database from `openDatabase()`; the store does not close it. */
  constructor(db: Database) {
    this.#database = db;
    this.#q = accountQueries(db.db);
  }

  /**
   * Creates the account `username@host` with its credentials (zero or more, one per hash),
   * atomically: the account row and all credentials are written in one transaction, or none.
   *
   * Throws `AccountExistsError` (condition `conflict`) if the account exists, including when
   * a concurrent `create` of the same account commits first (on both dialects the primary
   * key's unique violation is mapped). Throws `RangeError` for malformed credentials (see
   * `setCredentials`) before touching the database.
   */
  async create(host: string, username: string, credentials: readonly ScramCredentialsRow[]): Promise<void> {
    checkCredentials(credentials);
    const createdAt = Date.now();
    await this.#database.db.transaction().execute(async (trx) => {
      try {
        await trx.insertInto('accounts').values({ host, username, created_at: createdAt }).execute();
      } catch (error) {
        if (isUniqueViolation(error)) throw new AccountExistsError(host, username, { cause: error });
        throw error;
      }
      if (credentials.length > 0) {
        await trx.insertInto('scram_credentials').values(credentials.map((c) => toTableRow(host, username, c))).execute();
      }
    });
  }

  /** Returns true if the account `username@host` exists (disabled or not). */
  async exists(host: string, username: string): Promise<boolean> {
    return (await this.#q.exists.first(host, username)) !== undefined;
  }

  /**
   * Returns the account's credentials for hash function `hash` (e.g. `'SHA-256'`), or null
   * if the account does not exist or has no credentials for that hash.
   */
  async getCredentials(host: string, username: string, hash: string): Promise<ScramCredentialsRow | null> {
    const row = await this.#q.credentials.first(host, username, hash);
    if (row === undefined) return null;
    return {
      hash: row.hash,
      salt: row.salt,
      iterations: Number(row.iterations),
      storedKey: row.stored_key,
      serverKey: row.server_key,
    };
  }

  /**
   * Replaces all credentials of the account with `credentials` (e.g. after a password
   * change, XEP-0077 §3.3), in one transaction: afterwards exactly the given hashes exist.
   *
   * Throws `AccountNotFoundError` (condition `item-not-found`) if the account does not
   * exist, or is removed concurrently. Throws `RangeError` before touching the database if
   * a credential is malformed: empty `hash`, a `hash` given twice, `iterations` not a
   * positive integer, or a non-string salt/key.
   */
  async setCredentials(host: string, username: string, credentials: readonly ScramCredentialsRow[]): Promise<void> {
    checkCredentials(credentials);
    try {
      await this.#database.db.transaction().execute(async (trx) => {
        const account = trx
          .selectFrom('accounts')
          .select('username')
          .where('host', '=', host)
          .where('username', '=', username);
        let found: boolean;
        if (this.#database.dialect === 'postgres') {
          // Lock the account row first: concurrent setCredentials of one account then run one
          // after the other (else both delete, then both insert → unique violation), and a
          // concurrent remove waits for us instead of deadlocking on the credential rows.
          // NO KEY UPDATE still lets other tables' foreign-key checks (KEY SHARE) through.
          found = (await account.forNoKeyUpdate().executeTakeFirst()) !== undefined;
          if (found) await deleteCredentials(trx, host, username);
        } else {
          // SQLite: write first, so the transaction takes the database write lock at once (a
          // deferred transaction that reads, then writes, can fail with SQLITE_BUSY when
          // another connection wrote in between).
          await deleteCredentials(trx, host, username);
          found = (await account.executeTakeFirst()) !== undefined;
        }
        if (!found) throw new AccountNotFoundError(host, username);
        if (credentials.length > 0) {
          await trx
            .insertInto('scram_credentials')
            .values(credentials.map((c) => toTableRow(host, username, c)))
            .execute();
        }
      });
    } catch (error) {
      // Defensive: the account vanished between the check and the insert.
      if (isForeignKeyViolation(error)) throw new AccountNotFoundError(host, username, { cause: error });
      throw error;
    }
  }

  /**
   * Removes the account, its credentials and its `kv_store` rows (ON DELETE CASCADE).
   * Returns true if it existed, false otherwise.
   */
  async remove(host: string, username: string): Promise<boolean> {
    const result = await this.#database.db
      .deleteFrom('accounts')
      .where('host', '=', host)
      .where('username', '=', username)
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /**
   * Returns the usernames of all accounts of `host`, sorted by Unicode code point (UTF-8
   * byte order — the same on both dialects, whatever the PostgreSQL database's collation).
   */
  async list(host: string): Promise<string[]> {
    const rows = await this.#database.db
      .selectFrom('accounts')
      .select('username')
      .where('host', '=', host)
      .orderBy(this.#database.dialect === 'postgres' ? sql`username collate "C"` : sql`username`)
      .execute();
    return rows.map((row) => row.username);
  }

  /** Returns the number of accounts of `host`. */
  async count(host: string): Promise<number> {
    const row = await this.#database.db
      .selectFrom('accounts')
      .select((eb) => eb.fn.countAll<number | string | bigint>().as('n'))
      .where('host', '=', host)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

async function deleteCredentials(trx: Transaction<Schema>, host: string, username: string): Promise<void> {
  await trx.deleteFrom('scram_credentials').where('host', '=', host).where('username', '=', username).execute();
}

function toTableRow(host: string, username: string, c: ScramCredentialsRow) {
  return {
    host,
    username,
    hash: c.hash,
    salt: c.salt,
    iterations: c.iterations,
    stored_key: c.storedKey,
    server_key: c.serverKey,
  };
}

function checkCredentials(credentials: readonly ScramCredentialsRow[]): void {
  const seen = new Set<string>();
  for (const c of credentials) {
    if (typeof c.hash !== 'string' || c.hash === '') {
      throw new RangeError('storage: SCRAM credentials need a hash name');
    }
    if (seen.has(c.hash)) {
      throw new RangeError(`storage: SCRAM credentials for ${c.hash} given twice`);
    }
    seen.add(c.hash);
    if (!Number.isSafeInteger(c.iterations) || c.iterations < 1 || c.iterations > 0x7fffffff) {
      throw new RangeError(`storage: SCRAM iteration count must be a positive integer, got ${c.iterations}`);
    }
    if (typeof c.salt !== 'string' || typeof c.storedKey !== 'string' || typeof c.serverKey !== 'string') {
      throw new RangeError(`storage: SCRAM ${c.hash} salt and keys must be base64 strings`);
    }
  }
}

/** Unique or primary-key violation: PostgreSQL SQLSTATE 23505, SQLite extended result codes. */
function isUniqueViolation(error: unknown): boolean {
  const code = errorCode(error);
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** Foreign-key violation: PostgreSQL SQLSTATE 23503, SQLite extended result code. */
function isForeignKeyViolation(error: unknown): boolean {
  const code = errorCode(error);
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}
