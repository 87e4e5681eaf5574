/**
 * Schema migrations, in code (no file-system scanning, so they work under tsx and bundlers).
 *
 * Every migration uses Kysely's schema builder only, so the same code runs on SQLite and
 * PostgreSQL. Kysely's `Migrator` applies them in the order of their names (string sort),
 * so names start with a zero-padded sequence number. Never edit a migration that has been
 * released; add a new one.
 *
 * Type notes (ARCHITECTURE.md §4): `bigint` is used for ms timestamps — on PostgreSQL it is
 * int8, on SQLite any type name containing "INT" has INTEGER affinity (64-bit), so one
 * declaration fits both.
 */
import { sql, type Kysely } from 'kysely';

/**
 * One migration step. `db` is untyped on purpose (`Kysely<unknown>`): a migration must not
 * depend on the current `Schema`, which describes the state after the newest migration.
 */
export interface StorageMigration {
  /** Applies the step. Throws the driver's error on failure (the Migrator rolls back). */
  up(db: Kysely<unknown>): Promise<void>;
  /** Reverts the step. */
  down(db: Kysely<unknown>): Promise<void>;
}

/** All migrations, keyed by name; applied in name order. */
export const migrations: Readonly<Record<string, StorageMigration>> = {
  '0001_accounts': {
    async up(db) {
      await db.schema
        .createTable('accounts')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('accounts_pk', ['host', 'username'])
        .addCheckConstraint('accounts_disabled_check', sql`disabled in (0, 1)`)
        .execute();

      await db.schema
        .createTable('scram_credentials')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('salt', 'text', (c) => c.notNull())
        .addColumn('iterations', 'integer', (c) => c.notNull())
        .addColumn('stored_key', 'text', (c) => c.notNull())
        .addColumn('server_key', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('scram_credentials_pk', ['host', 'username', 'hash'])
        .addForeignKeyConstraint(
          'scram_credentials_account_fk',
          ['host', 'username'],
          'accounts',
          ['host', 'username'],
          (fk) => fk.onDelete('cascade'),
        )
        .execute();

      await db.schema
        .createTable('kv_store')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('store', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('kv_store_pk', ['host', 'username', 'store', 'key'])
        .addForeignKeyConstraint(
          'kv_store_account_fk',
          ['host', 'username'],
          'accounts',
          ['host', 'username'],
          (fk) => fk.onDelete('cascade'),
        )
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('kv_store').execute();
      await db.schema.dropTable('scram_credentials').execute();
      await db.schema.dropTable('accounts').execute();
    },
  },
  '0002_im': {
    async up(db) {
      // RFC 6121 §2: roster items. `subscription` is none|to|from|both, or 'remove' for a
      // tombstone kept for incremental roster versioning (XEP-0237); `ask` is 'subscribe' for
      // pending-out; `approved` is 1 for a pre-approval (§3.4); `groups` is a JSON array;
      // `version` is the roster version at which the item last changed.
      await db.schema
        .createTable('roster_items')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('jid', 'text', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('subscription', 'text', (c) => c.notNull().defaultTo('none'))
        .addColumn('ask', 'text')
        .addColumn('approved', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('groups', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('version', 'bigint', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('roster_items_pk', ['host', 'username', 'jid'])
        .addForeignKeyConstraint('roster_items_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();
      // XEP-0160: messages stored for an account with no available resource. `id` sorts in
      // arrival order (zero-padded time + sequence); `stamp` is ms since epoch (XEP-0203 delay).
      await db.schema
        .createTable('offline_messages')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('stamp', 'bigint', (c) => c.notNull())
        .addColumn('stanza', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('offline_messages_pk', ['host', 'username', 'id'])
        .addForeignKeyConstraint('offline_messages_account_fk', ['host', 'username'], 'accounts', ['host', 'username'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();
    },
    async down(db) {
      await db.schema.dropTable('offline_messages').execute();
      await db.schema.dropTable('roster_items').execute();
    },
  },
  '0003_muc': {
    async up(db) {
      // XEP-0045 §10.2: persistent rooms. `service` is the MUC host (conference.<domain>),
      // `name` the prepared room localpart; `config` the room configuration as JSON
      // (muc#roomconfig, §15.5.3); `subject` the current subject as JSON or null (§8.1).
      await db.schema
        .createTable('muc_rooms')
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('subject', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('muc_rooms_pk', ['service', 'name'])
        .execute();
      // XEP-0045 §5.2: affiliations of a persistent room, by bare JID (owner, admin, member,
      // outcast); `nick` a reserved nickname (§7.10), `reason` the reason given (§9.1).
      await db.schema
        .createTable('muc_affiliations')
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('room', 'text', (c) => c.notNull())
        .addColumn('jid', 'text', (c) => c.notNull())
        .addColumn('affiliation', 'text', (c) => c.notNull())
        .addColumn('nick', 'text')
        .addColumn('reason', 'text')
        .addPrimaryKeyConstraint('muc_affiliations_pk', ['service', 'room', 'jid'])
        .addForeignKeyConstraint('muc_affiliations_room_fk', ['service', 'room'], 'muc_rooms', ['service', 'name'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();
      // The room archive: groupchat messages of persistent rooms, for discussion history
      // (XEP-0045 §7.2.14) and, later, message archive queries (XEP-0313 §4 on a room).
      // `id` is the XEP-0359 stanza-id the room stamped (it sorts in arrival order);
      // `stamp` ms since epoch; `nick` the sender's room nickname; `sender` the sender's
      // real bare JID (for non-anonymous archives and moderation); `stanza` the message as
      // reflected, without 'to'.
      await db.schema
        .createTable('muc_messages')
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('room', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('stamp', 'bigint', (c) => c.notNull())
        .addColumn('nick', 'text', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('stanza', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('muc_messages_pk', ['service', 'room', 'id'])
        .addForeignKeyConstraint('muc_messages_room_fk', ['service', 'room'], 'muc_rooms', ['service', 'name'], (fk) =>
          fk.onDelete('cascade'),
        )
        .execute();
      await db.schema.createIndex('muc_messages_stamp_idx').on('muc_messages').columns(['service', 'room', 'stamp']).execute();
    },
    async down(db) {
      await db.schema.dropTable('muc_messages').execute();
      await db.schema.dropTable('muc_affiliations').execute();
      await db.schema.dropTable('muc_rooms').execute();
    },
  },
};
