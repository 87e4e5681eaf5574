/**
 * The Kysely table types of Parley's storage (ARCHITECTURE.md §4).
 *
 * One schema for both dialects (SQLite and PostgreSQL). The tables are created by the
 * migrations in `migrations.ts`; this file must describe the state after the newest
 * migration.
 *
 * Conventions that hold for every table:
 * - `host` is the served domain (a virtual host, already prepared), `username` the prepared
 *   localpart of an account (RFC 7622 §3.3). Both are compared byte-wise (SQLite BINARY,
 *   PostgreSQL deterministic collation) — callers pass prepared strings.
 * - Timestamps are integers in milliseconds since the Unix epoch (`bigint` column on
 *   PostgreSQL, INTEGER affinity on SQLite); both drivers return them as JS numbers.
 * - Booleans are integers 0/1 (SQLite has no boolean type).
 */
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/**
 * `accounts`: one row per registered account. Primary key (host, username).
 *
 * Rows of `scram_credentials` and `kv_store` reference an account and are deleted with it
 * (ON DELETE CASCADE).
 */
export interface AccountsTable {
  /** Served domain, e.g. `example.org`. Part of the primary key. */
  host: string;
  /** Prepared localpart (UsernameCaseMapped profile, RFC 8265 §3.3). Part of the primary key. */
  username: string;
  /** Creation time, ms since the Unix epoch. */
  created_at: number;
  /** 1 if the account is disabled (may not log in), else 0. Defaults to 0. */
  disabled: Generated<number>;
}

/**
 * `scram_credentials`: SCRAM salted keys of an account, one row per hash function
 * (RFC 5802 §3, RFC 7677). Passwords are never stored in clear (ARCHITECTURE.md §4).
 * Primary key (host, username, hash); (host, username) → accounts ON DELETE CASCADE.
 */
export interface ScramCredentialsTable {
  host: string;
  username: string;
  /** Hash function name as in the SASL mechanism name: `'SHA-1'`, `'SHA-256'`, `'SHA-512'`. */
  hash: string;
  /** Salt, base64. */
  salt: string;
  /** PBKDF2 iteration count (RFC 5802 §2.2 `i`). */
  iterations: number;
  /** StoredKey = H(ClientKey), base64 (RFC 5802 §3). */
  stored_key: string;
  /** ServerKey = HMAC(SaltedPassword, "Server Key"), base64 (RFC 5802 §3). */
  server_key: string;
}

/**
 * `kv_store`: generic per-account key/value storage for modules (private XML storage
 * XEP-0049, vCard XEP-0054, ...). `store` names the module's namespace of keys.
 * Primary key (host, username, store, key); (host, username) → accounts ON DELETE CASCADE.
 */
export interface KvStoreTable {
  host: string;
  username: string;
  /** Name of the store, chosen by the module (e.g. `'private'`, `'vcard'`). */
  store: string;
  key: string;
  /** Serialized value (XML, JSON ...; the module decides). */
  value: string;
}

/** `roster_items`: RFC 6121 §2 roster items (see migration 0002_im). */
export interface RosterItemsTable {
  host: string;
  username: string;
  /** The contact's bare JID. */
  jid: string;
  name: string | null;
  /** none | to | from | both, or 'remove' for a versioning tombstone (XEP-0237). */
  subscription: ColumnType<string, string | undefined, string>;
  /** 'subscribe' while a subscription request is pending-out, else null. */
  ask: string | null;
  /** 1 when the user pre-approved the contact's subscription (RFC 6121 §3.4). */
  approved: ColumnType<number, number | undefined, number>;
  /** JSON array of group names. */
  groups: ColumnType<string, string | undefined, string>;
  /** Roster version at which the item last changed. */
  version: ColumnType<number, number | undefined, number>;
}

/** `offline_messages`: XEP-0160 offline storage (see migration 0002_im). */
export interface OfflineMessagesTable {
  host: string;
  username: string;
  /** Sorts in arrival order. */
  id: string;
  /** Arrival time, ms since epoch. */
  stamp: number;
  /** The message stanza, serialized. */
  stanza: string;
}

/** The whole database as Kysely sees it: table name → row type. */
/** `muc_rooms`: persistent rooms of a MUC service (see migration 0003_muc). */
export interface MucRoomsTable {
  service: string;
  name: string;
  /** The room configuration, JSON. */
  config: string;
  /** The subject, JSON, or null when none was set. */
  subject: string | null;
  created_at: number;
}

/** `muc_affiliations`: a persistent room's affiliations by bare JID (see migration 0003_muc). */
export interface MucAffiliationsTable {
  service: string;
  room: string;
  jid: string;
  /** `owner`, `admin`, `member` or `outcast` (XEP-0045 §5.2). */
  affiliation: string;
  nick: string | null;
  reason: string | null;
}

/** `muc_messages`: the archive of persistent rooms (see migration 0003_muc). */
export interface MucMessagesTable {
  service: string;
  room: string;
  /** XEP-0359 stanza-id; sorts in arrival order. */
  id: string;
  stamp: number;
  nick: string;
  sender: string;
  stanza: string;
}

export interface Schema {
  accounts: AccountsTable;
  scram_credentials: ScramCredentialsTable;
  kv_store: KvStoreTable;
  roster_items: RosterItemsTable;
  offline_messages: OfflineMessagesTable;
  muc_rooms: MucRoomsTable;
  muc_affiliations: MucAffiliationsTable;
  muc_messages: MucMessagesTable;
}

export type AccountRow = Selectable<AccountsTable>;
export type NewAccountRow = Insertable<AccountsTable>;
export type AccountUpdate = Updateable<AccountsTable>;
export type ScramCredentialsTableRow = Selectable<ScramCredentialsTable>;
export type KvStoreRow = Selectable<KvStoreTable>;
