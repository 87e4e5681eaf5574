/**
 * Opening Parley's database: SQLite (better-sqlite3, the embedded default) or PostgreSQL
 * (`pg` Pool), both behind one Kysely `Schema`, migrated to the newest version on open
 * (ARCHITECTURE.md §4).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type MigrationProvider, type Migration } from 'kysely';
import type { Schema } from './schema.ts';
import { migrations } from './migrations.ts';

/**
 * Where the data lives.
 *
 * - `sqlite`: `path` is a file path (its parent directory is created if missing) or
 *   `':memory:'` for a private in-memory database (gone when closed). Opened in WAL mode with
 *   foreign keys on. Open one `Database` per file per process: better-sqlite3 is
 *   synchronous, and two connections of one process waiting on each other's lock would
 *   block the event loop for the busy timeout.
 * - `postgres`: `url` is a libpq connection URI (`postgres://user@host:5432/db`).
 *   `schema`, if given, is a PostgreSQL schema name (letters, digits, `_`; at most 63
 *   characters) created if missing and used as the `search_path` of every pooled
 *   connection — tests use it for isolation. `pool_size` is the pool's maximum number of
 *   connections (default 10).
 */
export type StorageConfig =
  | { driver: 'sqlite'; path: string }
  | { driver: 'postgres'; url: string; schema?: string; pool_size?: number };

/** An open, migrated database. */
export interface Database {
  /** The query builder, typed by `Schema`. */
  db: Kysely<Schema>;
  /** Which SQL dialect `db` speaks; stores use it where the two differ (e.g. collation). */
  dialect: 'sqlite' | 'postgres';
  /** Closes the SQLite file or ends the PostgreSQL pool. Idempotent. */
  close(): Promise<void>;
}

/** How long (ms) a SQLite connection waits for another connection's lock before failing. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

/** Default maximum size of the PostgreSQL pool. */
export const DEFAULT_PG_POOL_SIZE = 10;

/** PostgreSQL OID of `int8` (bigint). */
const PG_INT8_OID = 20;

const PG_SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Opens (and creates, if needed) the database and applies all pending migrations.
 *
 * Takes a `StorageConfig`; returns an open `Database` whose schema is current.
 * Throws: `RangeError` for an invalid config (empty SQLite path, bad PostgreSQL schema name,
 * non-positive pool size); the driver's error if the database cannot be opened or reached;
 * an `Error` (with the failing migration's name, `cause` = the driver's error) if a
 * migration fails — the database is closed again in every failure case.
 *
 * Migrations are safe to run concurrently from several processes on PostgreSQL (Kysely
 * takes an advisory lock) and run in one transaction on both dialects.
 */
export async function openDatabase(config: StorageConfig): Promise<Database> {
  const database = config.driver === 'sqlite' ? await openSqlite(config.path) : await openPostgres(config);
  try {
    await migrateToLatest(database.db, database.migrationSchema);
  } catch (error) {
    await database.close();
    throw error;
  }
  return { db: database.db, dialect: database.dialect, close: database.close };
}

interface OpenedDatabase extends Database {
  /** Schema holding Kysely's migration tables (PostgreSQL), or undefined (SQLite). */
  migrationSchema: string | undefined;
}

/** Prepared statements kept per SQLite database (distinct SQL texts; the cache starts over when full). */
const PREPARED_STATEMENTS_MAX = 500;

async function openSqlite(path: string): Promise<OpenedDatabase> {
  if (typeof path !== 'string' || path === '') {
    throw new RangeError('storage: sqlite path must be a file path or ":memory:"');
  }
  if (path !== ':memory:') {
    mkdirSync(dirname(path), { recursive: true });
  }
  // Loaded lazily: a PostgreSQL-only deployment need not load the native module.
  const { default: SqliteDatabase } = await import('better-sqlite3');
  const sqlite = new SqliteDatabase(path);
  try {
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
  } catch (error) {
    sqlite.close();
    throw error;
  }
  // Kysely prepares every query it runs; the server runs the same few dozen SQL texts over and
  // over (a login reads credentials, roster, blocklist …), so prepared statements are kept by
  // SQL text. SQLite re-prepares a kept statement itself if the schema changes.
  const statements = new Map<string, ReturnType<typeof sqlite.prepare>>();
  const database = {
    close: () => sqlite.close(),
    prepare(sqlText: string) {
      let st = statements.get(sqlText);
      if (st === undefined) {
        if (statements.size >= PREPARED_STATEMENTS_MAX) statements.clear();
        st = sqlite.prepare(sqlText);
        statements.set(sqlText, st);
      }
      return st;
    },
  };
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database }) });
  return { db, dialect: 'sqlite', close: once(() => db.destroy()), migrationSchema: undefined };
}

async function openPostgres(config: {
  url: string;
  schema?: string;
  pool_size?: number;
}): Promise<OpenedDatabase> {
  const { schema, pool_size: poolSize = DEFAULT_PG_POOL_SIZE } = config;
  if (schema !== undefined && !PG_SCHEMA_NAME.test(schema)) {
    throw new RangeError(`storage: invalid PostgreSQL schema name ${JSON.stringify(schema)}`);
  }
  if (!Number.isSafeInteger(poolSize) || poolSize < 1) {
    throw new RangeError(`storage: pool_size must be a positive integer, got ${poolSize}`);
  }
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: config.url,
    max: poolSize,
    application_name: 'parley',
    // search_path is set at connection start-up, so every pooled connection has it.
    ...(schema !== undefined ? { options: `-c search_path="${schema}"` } : {}),
    // bigint (int8) columns hold ms timestamps and counts: return them as numbers,
    // for this pool only (pg's global parsers are left alone).
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === PG_INT8_OID && (format ?? 'text') === 'text'
          ? parseInt8
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its connection emits 'error' on the pool; without a listener
  // that would crash the process. The pool drops the client and opens a new one on demand.
  pool.on('error', (error) => {
    process.emitWarning(`storage: idle PostgreSQL connection failed: ${error.message}`, 'ParleyStorageWarning');
  });
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  const close = once(() => db.destroy());
  try {
    let migrationSchema = schema;
    if (schema !== undefined) {
      await createSchemaIfMissing(pool, schema);
    } else {
      const result = await pool.query<{ schema: string | null }>('select current_schema() as schema');
      const current = result.rows[0]?.schema;
      if (current == null) {
        throw new Error('storage: PostgreSQL search_path names no existing schema');
      }
      migrationSchema = current;
    }
    return { db, dialect: 'postgres', close, migrationSchema };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Parses an int8 in text form; throws `RangeError` beyond ±(2^53 − 1) rather than round. */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`storage: bigint ${text} does not fit a JS number`);
  }
  return value;
}

async function createSchemaIfMissing(
  pool: { query(text: string): Promise<unknown> },
  schema: string,
): Promise<void> {
  try {
    await pool.query(`create schema if not exists "${schema}"`);
  } catch (error) {
    // Two concurrent `create schema if not exists` can still collide on the catalog's
    // unique index (23505) or report the schema as existing (42P06): both mean it exists.
    const code = (error as { code?: unknown }).code;
    if (code !== '23505' && code !== '42P06') throw error;
  }
}

async function migrateToLatest(db: Kysely<Schema>, migrationSchema: string | undefined): Promise<void> {
  const provider: MigrationProvider = {
    async getMigrations(): Promise<Record<string, Migration>> {
      return { ...migrations };
    },
  };
  const migrator = new Migrator({
    db,
    provider,
    // Pin the migration tables to our schema: Kysely otherwise treats a `kysely_migration`
    // table in any schema of the database as ours.
    ...(migrationSchema !== undefined ? { migrationTableSchema: migrationSchema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName;
    throw new Error(`storage: migration ${failed ?? '(setup)'} failed: ${describe(error)}`, { cause: error });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function once(action: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= action());
}
