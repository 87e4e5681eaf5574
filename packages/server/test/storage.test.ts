/**
 * Storage: the same suite on every backend — SQLite in a temp file, SQLite in memory, and
 * the real PostgreSQL server (a fresh random schema per run, dropped at the end).
 *
 * PostgreSQL URL: $PARLEY_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/test.
 * If it is unreachable the PG suite is skipped loudly, unless PARLEY_REQUIRE_POSTGRES=1
 * (CI), in which case that is a failure.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sql } from 'kysely';
import {
  openDatabase,
  AccountStore,
  AccountExistsError,
  AccountNotFoundError,
  KvStore,
  OfflineStore,
  RosterStore,
  MucStore,
  type Database,
  type StorageConfig,
  type ScramCredentialsRow,
} from '../src/storage/index.ts';
import { migrations } from '../src/storage/migrations.ts';
import { PreparedQuery } from '../src/storage/prepared.ts';

const PG_URL = process.env.PARLEY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REQUIRE_PG = process.env.PARLEY_REQUIRE_POSTGRES === '1';
const PG_ADDRESS = (() => {
  const url = new URL(PG_URL);
  return `${url.hostname}:${url.port || '5432'}`;
})();
const PG_SKIP_REASON = `PostgreSQL not reachable at ${PG_ADDRESS} — PG backend NOT TESTED`;

const HOST = 'example.org';
const OTHER_HOST = 'other.example';

function creds(hash: string, tag = 'a'): ScramCredentialsRow {
  return {
    hash,
    salt: Buffer.from(`salt-${hash}-${tag}`).toString('base64'),
    iterations: hash === 'SHA-1' ? 4096 : 5000,
    storedKey: Buffer.from(`stored-${hash}-${tag}`).toString('base64'),
    serverKey: Buffer.from(`server-${hash}-${tag}`).toString('base64'),
  };
}

/** Sort by Unicode code point (= UTF-8 byte order), not by UTF-16 code unit. */
function byCodePoint(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!);
  const y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}

async function rowCount(database: Database, table: 'scram_credentials' | 'kv_store', host: string, username: string) {
  const row = await database.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('host', '=', host)
    .where('username', '=', username)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function migrationNames(database: Database): Promise<string[]> {
  const result = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(database.db);
  return result.rows.map((r) => r.name);
}

/** Makes inserting a credential with hash 'FAIL-TEST' fail inside the database. */
async function injectCredentialFailure(database: Database): Promise<void> {
  if (database.dialect === 'sqlite') {
    await sql`create trigger test_inject_failure before insert on scram_credentials
      when new.hash = 'FAIL-TEST' begin select raise(abort, 'injected failure'); end`.execute(database.db);
  } else {
    await sql`create function test_inject_failure() returns trigger language plpgsql as $$
      begin if new.hash = 'FAIL-TEST' then raise exception 'injected failure'; end if; return new; end $$`.execute(
      database.db,
    );
    await sql`create trigger test_inject_failure before insert on scram_credentials
      for each row execute function test_inject_failure()`.execute(database.db);
  }
}

interface Backend {
  name: string;
  config: StorageConfig;
  /** True if a second open sees the same data (file / server), false for :memory:. */
  persistent: boolean;
  /** Runs once before the suite (e.g. concurrent first open). */
  setup?: () => Promise<void>;
  /** Runs once after the suite (remove temp files, drop the schema). */
  teardown: () => Promise<void>;
}

function storageSuite(backend: Backend): void {
  describe(backend.name, () => {
    let database: Database;
    let store: AccountStore;

    before(async () => {
      await backend.setup?.();
      database = await openDatabase(backend.config);
      store = new AccountStore(database);
    });

    after(async () => {
      await database?.close();
      await backend.teardown();
    });

    test('opening runs the migrations; opening again is idempotent', async () => {
      assert.deepEqual(await migrationNames(database), Object.keys(migrations).sort());
      await store.create(HOST, 'persisted', [creds('SHA-256')]);
      if (backend.persistent) {
        await database.close();
        await database.close(); // close is idempotent
        database = await openDatabase(backend.config);
        store = new AccountStore(database);
        assert.deepEqual(await migrationNames(database), Object.keys(migrations).sort());
        assert.equal(await store.exists(HOST, 'persisted'), true, 'data survives reopening');
        const again = await openDatabase(backend.config);
        try {
          assert.deepEqual(await migrationNames(again), Object.keys(migrations).sort());
        } finally {
          await again.close();
        }
      } else {
        const other = await openDatabase(backend.config);
        try {
          assert.deepEqual(await migrationNames(other), Object.keys(migrations).sort());
          assert.equal(await new AccountStore(other).exists(HOST, 'persisted'), false, ':memory: is private');
        } finally {
          await other.close();
        }
      }
      assert.equal(await store.remove(HOST, 'persisted'), true);
    });

    if (backend.config.driver === 'sqlite') {
      const memory = backend.config.path === ':memory:';
      test('sqlite connection has WAL journal and foreign keys on', async () => {
        const journal = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(database.db);
        assert.equal(journal.rows[0]?.journal_mode, memory ? 'memory' : 'wal');
        const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(database.db);
        assert.equal(fk.rows[0]?.foreign_keys, 1);
        const busy = await sql<{ timeout: number }>`pragma busy_timeout`.execute(database.db);
        assert.ok((busy.rows[0]?.timeout ?? 0) > 0);
      });
    }

    test('create, exists, getCredentials', async () => {
      const before = Date.now();
      await store.create(HOST, 'alice', [creds('SHA-1'), creds('SHA-256')]);
      assert.equal(await store.exists(HOST, 'alice'), true);
      assert.equal(await store.exists(HOST, 'bob'), false);
      assert.equal(await store.exists(OTHER_HOST, 'alice'), false, 'accounts are per host');
      assert.deepEqual(await store.getCredentials(HOST, 'alice', 'SHA-1'), creds('SHA-1'));
      assert.deepEqual(await store.getCredentials(HOST, 'alice', 'SHA-256'), creds('SHA-256'));
      assert.equal(await store.getCredentials(HOST, 'alice', 'SHA-512'), null);
      assert.equal(await store.getCredentials(HOST, 'nobody', 'SHA-1'), null);

      const row = await database.db
        .selectFrom('accounts')
        .selectAll()
        .where('host', '=', HOST)
        .where('username', '=', 'alice')
        .executeTakeFirstOrThrow();
      assert.equal(typeof row.created_at, 'number', 'bigint created_at comes back as a number');
      assert.ok(row.created_at >= before && row.created_at <= Date.now());
      assert.equal(row.disabled, 0);
    });

    test('an account without credentials can be created', async () => {
      await store.create(HOST, 'nocreds', []);
      assert.equal(await store.exists(HOST, 'nocreds'), true);
      assert.equal(await store.getCredentials(HOST, 'nocreds', 'SHA-256'), null);
      assert.equal(await store.remove(HOST, 'nocreds'), true);
    });

    test('usernames compare byte-wise (no case folding in the store)', async () => {
      await store.create(HOST, 'carol', [creds('SHA-256')]);
      assert.equal(await store.exists(HOST, 'Carol'), false);
      await store.create(HOST, 'Carol', [creds('SHA-256', 'upper')]);
      assert.deepEqual(await store.getCredentials(HOST, 'Carol', 'SHA-256'), creds('SHA-256', 'upper'));
      assert.equal(await store.remove(HOST, 'Carol'), true);
      assert.equal(await store.remove(HOST, 'carol'), true);
    });

    test('duplicate create throws AccountExistsError (conflict) and changes nothing', async () => {
      await assert.rejects(store.create(HOST, 'alice', [creds('SHA-256', 'other')]), (error: unknown) => {
        assert.ok(error instanceof AccountExistsError);
        assert.equal(error.condition, 'conflict');
        assert.equal(error.host, HOST);
        assert.equal(error.username, 'alice');
        return true;
      });
      assert.deepEqual(await store.getCredentials(HOST, 'alice', 'SHA-256'), creds('SHA-256'));
      // The same username on another host is another account.
      await store.create(OTHER_HOST, 'alice', [creds('SHA-256', 'other')]);
      assert.deepEqual(await store.getCredentials(OTHER_HOST, 'alice', 'SHA-256'), creds('SHA-256', 'other'));
    });

    test('concurrent creates of one account: exactly one wins, the others get AccountExistsError', async () => {
      const tags = ['t0', 't1', 't2', 't3', 't4'];
      const results = await Promise.allSettled(tags.map((tag) => store.create(HOST, 'racer', [creds('SHA-256', tag)])));
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [tags[i]!] : []));
      assert.equal(won.length, 1, `exactly one create succeeds: ${JSON.stringify(results)}`);
      for (const r of results) {
        if (r.status === 'rejected') {
          assert.ok(r.reason instanceof AccountExistsError, `loser gets AccountExistsError, got ${String(r.reason)}`);
        }
      }
      assert.deepEqual(await store.getCredentials(HOST, 'racer', 'SHA-256'), creds('SHA-256', won[0]));
      assert.equal(await rowCount(database, 'scram_credentials', HOST, 'racer'), 1);
      assert.equal(await store.remove(HOST, 'racer'), true);
    });

    test('concurrent creates through two separate connections/pools', { skip: !backend.persistent }, async () => {
      if (backend.config.driver === 'sqlite') {
        // Two better-sqlite3 connections in one process block each other synchronously;
        // one Database per file per process is the documented rule. Sequential use is fine.
        const second = await openDatabase(backend.config);
        try {
          await new AccountStore(second).create(HOST, 'twin', [creds('SHA-256', 'x')]);
          await assert.rejects(store.create(HOST, 'twin', [creds('SHA-256', 'y')]), AccountExistsError);
        } finally {
          await second.close();
        }
      } else {
        const second = await openDatabase(backend.config);
        try {
          const results = await Promise.allSettled([
            store.create(HOST, 'twin', [creds('SHA-256', 'x')]),
            new AccountStore(second).create(HOST, 'twin', [creds('SHA-256', 'y')]),
          ]);
          assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
          const loser = results.find((r) => r.status === 'rejected');
          assert.ok(loser?.status === 'rejected' && loser.reason instanceof AccountExistsError);
        } finally {
          await second.close();
        }
      }
      assert.equal(await store.remove(HOST, 'twin'), true);
    });

    test('malformed credentials are rejected before anything is written', async () => {
      await assert.rejects(store.create(HOST, 'dup', [creds('SHA-256'), creds('SHA-256', 'b')]), RangeError);
      await assert.rejects(store.create(HOST, 'dup', [{ ...creds('SHA-256'), iterations: 0 }]), RangeError);
      await assert.rejects(store.create(HOST, 'dup', [{ ...creds('SHA-256'), hash: '' }]), RangeError);
      assert.equal(await store.exists(HOST, 'dup'), false);
      await assert.rejects(store.setCredentials(HOST, 'alice', [{ ...creds('SHA-1'), iterations: 1.5 }]), RangeError);
      assert.deepEqual(await store.getCredentials(HOST, 'alice', 'SHA-1'), creds('SHA-1'));
    });

    test('setCredentials replaces all credentials', async () => {
      await store.setCredentials(HOST, 'alice', [creds('SHA-256', 'new'), creds('SHA-512', 'new')]);
      assert.equal(await store.getCredentials(HOST, 'alice', 'SHA-1'), null, 'old SHA-1 removed');
      assert.deepEqual(await store.getCredentials(HOST, 'alice', 'SHA-256'), creds('SHA-256', 'new'));
      assert.deepEqual(await store.getCredentials(HOST, 'alice', 'SHA-512'), creds('SHA-512', 'new'));
      assert.deepEqual(
        await store.getCredentials(OTHER_HOST, 'alice', 'SHA-256'),
        creds('SHA-256', 'other'),
        'other host untouched',
      );
      await store.setCredentials(HOST, 'alice', []);
      assert.equal(await rowCount(database, 'scram_credentials', HOST, 'alice'), 0);
      await store.setCredentials(HOST, 'alice', [creds('SHA-1'), creds('SHA-256')]);
      assert.deepEqual(await store.getCredentials(HOST, 'alice', 'SHA-1'), creds('SHA-1'));
    });

    test('concurrent setCredentials of one account: all succeed, the last one wins entirely', async () => {
      await store.create(HOST, 'busy', [creds('SHA-1')]);
      const sets = ['s0', 's1', 's2', 's3', 's4'].map((tag) => [creds('SHA-256', tag), creds('SHA-512', tag)]);
      await Promise.all(sets.map((set) => store.setCredentials(HOST, 'busy', set)));
      assert.equal(await store.getCredentials(HOST, 'busy', 'SHA-1'), null);
      assert.equal(await rowCount(database, 'scram_credentials', HOST, 'busy'), 2);
      const sha256 = await store.getCredentials(HOST, 'busy', 'SHA-256');
      const winner = sets.find((set) => set[0]!.salt === sha256?.salt);
      assert.ok(winner, 'SHA-256 row comes from one of the sets');
      assert.deepEqual(await store.getCredentials(HOST, 'busy', 'SHA-512'), winner[1], 'both rows from the same set');
      assert.equal(await store.remove(HOST, 'busy'), true);
    });

    test('setCredentials racing remove: either order is clean', async () => {
      await store.create(HOST, 'fleeting', [creds('SHA-1')]);
      const [set, removed] = await Promise.allSettled([
        store.setCredentials(HOST, 'fleeting', [creds('SHA-256')]),
        store.remove(HOST, 'fleeting'),
      ]);
      assert.deepEqual(removed, { status: 'fulfilled', value: true });
      if (set.status === 'rejected') assert.ok(set.reason instanceof AccountNotFoundError, String(set.reason));
      assert.equal(await store.exists(HOST, 'fleeting'), false);
      assert.equal(await rowCount(database, 'scram_credentials', HOST, 'fleeting'), 0);
    });

    test('setCredentials on a missing account throws AccountNotFoundError (item-not-found)', async () => {
      await assert.rejects(store.setCredentials(HOST, 'ghost', [creds('SHA-256')]), (error: unknown) => {
        assert.ok(error instanceof AccountNotFoundError);
        assert.equal(error.condition, 'item-not-found');
        assert.equal(error.username, 'ghost');
        return true;
      });
      await assert.rejects(store.setCredentials(HOST, 'ghost', []), AccountNotFoundError);
      assert.equal(await store.exists(HOST, 'ghost'), false);
      assert.equal(await rowCount(database, 'scram_credentials', HOST, 'ghost'), 0);
    });

    test('create and setCredentials are atomic: a failing credential insert rolls everything back', async () => {
      await injectCredentialFailure(database);
      await assert.rejects(store.create(HOST, 'halfway', [creds('SHA-1'), creds('FAIL-TEST')]), /injected failure/);
      assert.equal(await store.exists(HOST, 'halfway'), false, 'no account row left behind');
      assert.equal(await rowCount(database, 'scram_credentials', HOST, 'halfway'), 0);

      await assert.rejects(
        store.setCredentials(HOST, 'alice', [creds('SHA-512', 'x'), creds('FAIL-TEST')]),
        /injected failure/,
      );
      assert.deepEqual(await store.getCredentials(HOST, 'alice', 'SHA-1'), creds('SHA-1'), 'old credentials kept');
      assert.deepEqual(await store.getCredentials(HOST, 'alice', 'SHA-256'), creds('SHA-256'));
      assert.equal(await store.getCredentials(HOST, 'alice', 'SHA-512'), null);
    });

    test('list is sorted by code point and per host; count', async () => {
      const names = ['zoe', 'bob', 'émile', '\u{1F600}x', '\uFF5A', 'dave', 'alice2'];
      for (const name of names) await store.create(HOST, name, [creds('SHA-256', name)]);
      const expected = ['alice', ...names].sort(byCodePoint);
      assert.deepEqual(expected.slice(-2), ['\uFF5A', '\u{1F600}x'], 'code point order, not UTF-16 order');
      assert.deepEqual(await store.list(HOST), expected);
      assert.equal(await store.count(HOST), expected.length);
      assert.deepEqual(await store.list(OTHER_HOST), ['alice']);
      assert.equal(await store.count(OTHER_HOST), 1);
      assert.deepEqual(await store.list('empty.example'), []);
      assert.equal(await store.count('empty.example'), 0);
      for (const name of names) assert.equal(await store.remove(HOST, name), true);
      assert.deepEqual(await store.list(HOST), ['alice']);
      assert.equal(await store.count(HOST), 1);
    });

    test('kv_store rows need an existing account (foreign key enforced)', async () => {
      await assert.rejects(
        database.db.insertInto('kv_store').values({ host: HOST, username: 'ghost', store: 's', key: 'k', value: 'v' }).execute(),
      );
    });

    test('remove deletes the account and cascades to credentials and kv_store', async () => {
      await store.create(HOST, 'doomed', [creds('SHA-1'), creds('SHA-256')]);
      await database.db
        .insertInto('kv_store')
        .values([
          { host: HOST, username: 'doomed', store: 'private', key: 'jabber:iq:private storage:bookmarks', value: '<x/>' },
          { host: HOST, username: 'doomed', store: 'vcard', key: '', value: '<vCard/>' },
          { host: HOST, username: 'alice', store: 'vcard', key: '', value: '<vCard/>' },
        ])
        .execute();
      assert.equal(await rowCount(database, 'kv_store', HOST, 'doomed'), 2);

      assert.equal(await store.remove(HOST, 'doomed'), true);
      assert.equal(await store.exists(HOST, 'doomed'), false);
      assert.equal(await store.getCredentials(HOST, 'doomed', 'SHA-1'), null);
      assert.equal(await rowCount(database, 'scram_credentials', HOST, 'doomed'), 0);
      assert.equal(await rowCount(database, 'kv_store', HOST, 'doomed'), 0);
      assert.equal(await rowCount(database, 'kv_store', HOST, 'alice'), 1, "other accounts' rows kept");
      assert.equal(await rowCount(database, 'scram_credentials', HOST, 'alice'), 2);

      assert.equal(await store.remove(HOST, 'doomed'), false, 'removing again reports false');
      assert.equal(await store.remove(HOST, 'never-existed'), false);
      // The name can be registered again, fresh.
      await store.create(HOST, 'doomed', [creds('SHA-256', 'again')]);
      assert.equal(await store.getCredentials(HOST, 'doomed', 'SHA-1'), null);
      assert.equal(await store.remove(HOST, 'doomed'), true);
    });

    test('roster: versions grow with each change; removals leave tombstones for changesSince (XEP-0237)', async () => {
      await store.create(HOST, 'rosie', [creds('SHA-256')]);
      const roster = new RosterStore(database);
      assert.equal(await roster.version(HOST, 'rosie'), 0);
      const item = (jid: string, groups: string[] = []) => ({ jid, name: null, subscription: 'none' as const, ask: false, approved: false, groups });
      assert.equal(await roster.put(HOST, 'rosie', item('a@example.org', ['Friends', 'Ünïcode'])), 1);
      assert.equal(await roster.put(HOST, 'rosie', { ...item('b@example.org'), subscription: 'both', ask: true }), 2);
      assert.equal(await roster.remove(HOST, 'rosie', 'a@example.org'), 3);
      assert.equal(await roster.remove(HOST, 'rosie', 'a@example.org'), null, 'removing twice');
      assert.equal(await roster.version(HOST, 'rosie'), 3);
      assert.deepEqual((await roster.items(HOST, 'rosie')).map((i) => [i.jid, i.subscription, i.ask]), [['b@example.org', 'both', true]]);
      assert.equal(await roster.count(HOST, 'rosie'), 1);
      const changes = await roster.changesSince(HOST, 'rosie', 1);
      assert.deepEqual(changes.map((c) => [c.item.jid, c.removed, c.version]), [['b@example.org', false, 2], ['a@example.org', true, 3]]);
      // Re-adding a removed contact turns its tombstone back into an item.
      assert.equal(await roster.put(HOST, 'rosie', item('a@example.org')), 4);
      assert.equal(await roster.count(HOST, 'rosie'), 2);
      assert.deepEqual((await roster.get(HOST, 'rosie', 'a@example.org'))?.groups, []);
    });

    test('offline messages come back in arrival order; kv values are replaced; both go with the account', async () => {
      await store.create(HOST, 'otto', [creds('SHA-256')]);
      const offline = new OfflineStore(database);
      const kv = new KvStore(database);
      const ids = [];
      for (const n of [1, 2, 3]) ids.push(await offline.add(HOST, 'otto', `<message><body>${n}</body></message>`, 1_700_000_000_000));
      assert.deepEqual((await offline.list(HOST, 'otto')).map((m) => m.stanza), [1, 2, 3].map((n) => `<message><body>${n}</body></message>`));
      assert.equal(await offline.count(HOST, 'otto'), 3);
      assert.equal(await offline.delete(HOST, 'otto', ids.slice(0, 2)), 2);
      assert.equal(await offline.count(HOST, 'otto'), 1);
      await kv.set(HOST, 'otto', 'vcard', '', '<vCard/>');
      await kv.set(HOST, 'otto', 'vcard', '', '<vCard><FN>Otto</FN></vCard>');
      assert.equal(await kv.get(HOST, 'otto', 'vcard', ''), '<vCard><FN>Otto</FN></vCard>');
      assert.deepEqual([...(await kv.all(HOST, 'otto', 'vcard')).keys()], ['']);
      await new RosterStore(database).put(HOST, 'otto', { jid: 'x@example.org', name: 'X', subscription: 'to', ask: false, approved: false, groups: [] });
      assert.equal(await store.remove(HOST, 'otto'), true);
      assert.equal(await offline.count(HOST, 'otto'), 0);
      assert.equal(await kv.get(HOST, 'otto', 'vcard', ''), null);
      assert.equal(await new RosterStore(database).count(HOST, 'otto'), 0);
    });

    test('prepared queries: compiled once, run with new values, in transactions too; a value compiled into the SQL text is refused', async () => {
      await store.create(HOST, 'pia', [creds('SHA-1')]);
      const kv = new KvStore(database);
      // An argument used twice (the upsert's value) and constants of the query ('note').
      const put = new PreparedQuery(database.db, (q, username: string, key: string, value: string) =>
        q
          .insertInto('kv_store')
          .values({ host: HOST, username, store: 'note', key, value })
          .onConflict((oc) => oc.columns(['host', 'username', 'store', 'key']).doUpdateSet({ value })),
      );
      const read = new PreparedQuery(database.db, (q, username: string, key: string) =>
        q.selectFrom('kv_store').select('value').where('host', '=', HOST).where('username', '=', username).where('store', '=', 'note').where('key', '=', key),
      );
      await put.rows('pia', 'a', '1');
      await put.rows('pia', 'b', '2');
      await put.rows('pia', 'a', '3');
      assert.deepEqual(await read.first('pia', 'a'), { value: '3' });
      assert.equal(await read.first('pia', 'c'), undefined);
      assert.deepEqual(Object.fromEntries(await kv.all(HOST, 'pia', 'note')), { a: '3', b: '2' });
      // In a transaction that rolls back, nothing stays.
      await assert.rejects(
        database.db.transaction().execute(async (trx) => {
          const r = await put.run(trx, 'pia', 'c', '4');
          assert.equal(Number(r.numAffectedRows), 1);
          assert.deepEqual((await read.run(trx, 'pia', 'c')).rows, [{ value: '4' }]);
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.equal(await read.first('pia', 'c'), undefined);
      const raw = new PreparedQuery(database.db, (q, key: string) => q.selectFrom('kv_store').select('value').where(sql.ref(key), '=', 'x'));
      await assert.rejects(raw.rows('value'), /must bind each of its 1 arguments/);
      assert.equal(await store.remove(HOST, 'pia'), true);
    });

    test('MUC rooms, affiliations and archive: stored, replaced, read back in order, deleted with the room', async () => {
      const muc = new MucStore(database, 'conference.example.org');
      const other = new MucStore(database, 'rooms.example.net');
      await muc.saveRoom({ name: 'lobby', config: '{"a":1}', subject: null, createdAt: 1_700_000_000_000 });
      await muc.saveRoom({ name: 'lobby', config: '{"a":2}', subject: '{"text":"hi"}', createdAt: 1 });
      await other.saveRoom({ name: 'lobby', config: '{}', subject: null, createdAt: 5 });
      assert.deepEqual(await muc.rooms(), [{ name: 'lobby', config: '{"a":2}', subject: '{"text":"hi"}', createdAt: 1_700_000_000_000 }]);
      await muc.saveSubject('lobby', null);
      assert.equal((await muc.rooms())[0]!.subject, null);
      await muc.replaceAffiliations('lobby', [
        { jid: 'owner@example.org', affiliation: 'owner', nick: null, reason: null },
        { jid: 'troll@example.org', affiliation: 'outcast', nick: null, reason: 'spam' },
      ]);
      await muc.replaceAffiliations('lobby', [
        { jid: 'owner@example.org', affiliation: 'owner', nick: 'Boss', reason: null },
        { jid: 'm@example.org', affiliation: 'member', nick: null, reason: null },
      ]);
      assert.deepEqual((await muc.affiliations('lobby')).map((a) => [a.jid, a.affiliation, a.nick]), [
        ['m@example.org', 'member', null],
        ['owner@example.org', 'owner', 'Boss'],
      ]);
      const rows = Array.from({ length: 5 }, (_, i) => ({
        room: 'lobby',
        id: `id-${i}`,
        stamp: 1_700_000_000_000 + i,
        nick: 'n',
        sender: 'owner@example.org',
        stanza: `<message><body>${i}</body></message>`,
      }));
      await muc.append(rows.slice(0, 2));
      await muc.append(rows.slice(2));
      assert.deepEqual((await muc.latest('lobby', 3)).map((m) => m.stanza), [2, 3, 4].map((i) => `<message><body>${i}</body></message>`));
      assert.equal((await muc.latest('lobby', 3))[0]!.stamp, 1_700_000_000_002);
      await assert.rejects(muc.append([rows[0]!]), 'an archived id is unique per room');
      await muc.deleteRoom('lobby');
      assert.deepEqual(await muc.rooms(), []);
      assert.deepEqual(await muc.affiliations('lobby'), []);
      assert.deepEqual(await muc.latest('lobby', 10), []);
      assert.equal((await other.rooms()).length, 1, 'another service keeps its room of the same name');
      await other.deleteRoom('lobby');
    });
  });
}

// --- SQLite ---------------------------------------------------------------------------

const tempDir = mkdtempSync(join(tmpdir(), 'parley-storage-'));
const sqliteFile = join(tempDir, 'nested', 'dir', 'parley.sqlite');

storageSuite({
  name: 'sqlite (temp file)',
  config: { driver: 'sqlite', path: sqliteFile },
  persistent: true,
  async teardown() {
    assert.ok(existsSync(sqliteFile), 'missing parent directories were created');
    rmSync(tempDir, { recursive: true, force: true });
  },
});

storageSuite({
  name: 'sqlite (:memory:)',
  config: { driver: 'sqlite', path: ':memory:' },
  persistent: false,
  async teardown() {},
});

test('invalid configurations are rejected with RangeError', async () => {
  await assert.rejects(openDatabase({ driver: 'sqlite', path: '' }), RangeError);
  await assert.rejects(openDatabase({ driver: 'postgres', url: PG_URL, schema: 'bad"; drop' }), RangeError);
  await assert.rejects(openDatabase({ driver: 'postgres', url: PG_URL, pool_size: 0 }), RangeError);
});

// --- PostgreSQL -----------------------------------------------------------------------

async function postgresReachable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await client.end().catch(() => {});
  }
}

const pgProblem = await postgresReachable();

if (pgProblem === null) {
  const schema = `parley_test_${randomBytes(6).toString('hex')}`;
  const config: StorageConfig = { driver: 'postgres', url: PG_URL, schema, pool_size: 4 };
  storageSuite({
    name: `postgres (schema ${schema})`,
    config,
    persistent: true,
    async setup() {
      // Two processes starting at once on a fresh schema: schema creation and migrations
      // must not collide.
      const opened = await Promise.all([openDatabase(config), openDatabase(config)]);
      await Promise.all(opened.map((d) => d.close()));
    },
    async teardown() {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        await client.query(`drop schema if exists "${schema}" cascade`);
      } finally {
        await client.end();
      }
    },
  });
} else if (REQUIRE_PG) {
  test('postgres backend', () => {
    assert.fail(`PARLEY_REQUIRE_POSTGRES=1 but PostgreSQL is not reachable at ${PG_URL}: ${pgProblem}`);
  });
} else {
  console.warn(`WARNING: ${PG_SKIP_REASON} (${pgProblem}); set PARLEY_REQUIRE_POSTGRES=1 to make this fail`);
  test('postgres backend', { skip: PG_SKIP_REASON }, () => {});
}
