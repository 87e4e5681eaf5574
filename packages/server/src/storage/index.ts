/**
 * Parley storage: one Kysely schema and one set of migrations on SQLite (embedded default)
 * and PostgreSQL (ARCHITECTURE.md §4), and the stores built on it.
 */
export {
  openDatabase,
  SQLITE_BUSY_TIMEOUT_MS,
  DEFAULT_PG_POOL_SIZE,
  type Database,
  type StorageConfig,
} from './database.ts';
export { migrations, type StorageMigration } from './migrations.ts';
export type {
  Schema,
  AccountsTable,
  ScramCredentialsTable,
  KvStoreTable,
  AccountRow,
  NewAccountRow,
  AccountUpdate,
  ScramCredentialsTableRow,
  KvStoreRow,
} from './schema.ts';
export {
  AccountStore,
  AccountExistsError,
  AccountNotFoundError,
  type ScramCredentialsRow,
} from './accounts.ts';
export * from './kv.ts';
export * from './roster.ts';
export * from './offline.ts';
export * from './muc.ts';
