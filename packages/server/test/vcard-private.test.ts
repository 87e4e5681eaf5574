// vCard (XEP-0054) and private XML storage (XEP-0049) against the real server, with two
// independent clients: slixmpp (Debian python3-slixmpp, its xep_0054 / xep_0049 plugins) and
// @xmpp/client (npm). Data must survive a restart and go with the account.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startXmppjs, xml, type Client } from './helpers/xmppjs.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { requireSlixmpp, runDriver, type SliEvent } from './helpers/slixmpp.ts';
import { KvStore } from '../src/storage/index.ts';


type Step = Record<string, unknown> & { op: string };

/** Runs the slixmpp driver: logs in as `jid`, runs `steps`, resolves with one event per step (in order). */
async function slixmpp(port: number, jid: string, password: string, steps: Step[]): Promise<SliEvent[]> {
  const { code, events, stderr } = await runDriver('slixmpp_vcard.py', [String(port), jid, password, JSON.stringify(steps)]).done;
  const results = events.filter((e) => e.event !== 'session' && e.event !== 'disconnected');
  if (code !== 0 || results.length !== steps.length) {
    throw new Error(`slixmpp exited ${code}; events ${JSON.stringify(events).slice(0, 2000)}; stderr ${stderr.slice(-2000)}`);
  }
  return results;
}


/** Runs `fn` with an @xmpp/client session, stopping it afterwards. */
const xmppjs = startXmppjs;

async function withXmppjs<T>(port: number, username: string, password: string, fn: (x: Client) => Promise<T>): Promise<T> {
  const x = await xmppjs(port, username, password, 'xjs');
  try {
    return await fn(x);
  } finally {
    await x.stop();
  }
}

/** The error condition of a rejected @xmpp/client iq request. */
async function iqCondition(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { condition?: string }).condition ?? String(err);
  }
  assert.fail('expected an error reply');
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// Unicode in several scripts and planes, and characters that need escaping in XML.
const FN = 'Zoë Ångström-李 🦊';
const NICK = 'ゾエ';
const DESC = 'Привет, <world> & "friends" — ελληνικά ✓';

describe('vCard (XEP-0054) and private XML storage (XEP-0049)', () => {
  let srv: TestServer;
  let dataDir: string;
  let tmp: string;
  let photo: Buffer;
  let photoFile: string;
  let bigPhotoFile: string;

  before(async () => {
    requireSlixmpp();
    dataDir = mkdtempSync(join(tmpdir(), 'parley-vcard-'));
    tmp = mkdtempSync(join(tmpdir(), 'parley-vcard-photo-'));
    photo = randomBytes(48 * 1024); // base64 ≈ 64 KiB: under the default 128 KiB limit
    photoFile = join(tmp, 'avatar.png');
    writeFileSync(photoFile, photo);
    bigPhotoFile = join(tmp, 'big.png');
    writeFileSync(bigPhotoFile, randomBytes(120 * 1024)); // base64 ≈ 160 KiB: over the limit, under the stanza limit
    srv = await startTestServer({}, dataDir);
    for (const u of ['alice', 'bob', 'carol']) await srv.createUser(u, `${u}-pw`);
  });
  after(async () => {
    await srv.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  });

  const expectedVcard = () => ({
    fn: FN,
    nickname: NICK,
    desc: DESC,
    photo_type: 'image/png',
    photo_sha256: sha256(photo),
    photo_len: photo.length,
  });

  /** Bob reads alice's vCard with @xmpp/client and checks every field against what slixmpp set. */
  async function bobReadsAlicesVcard(): Promise<void> {
    await withXmppjs(srv.port, 'bob', 'bob-pw', async (bob) => {
      const res = await bob.iqCaller.request(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('vCard', { xmlns: 'vcard-temp' })));
      // XEP-0054 §3.3: the server answers for the account, from its bare JID.
      assert.equal(res.attrs.from, 'alice@localhost');
      const v = res.getChild('vCard', 'vcard-temp');
      assert.ok(v, res.toString().slice(0, 500));
      assert.equal(v.getChildText('FN'), FN);
      assert.equal(v.getChildText('NICKNAME'), NICK);
      assert.equal(v.getChildText('DESC'), DESC);
      const ph = v.getChild('PHOTO');
      assert.equal(ph?.getChildText('TYPE'), 'image/png');
      const bin = Buffer.from((ph?.getChildText('BINVAL') ?? '').replace(/\s+/g, ''), 'base64');
      assert.equal(bin.length, photo.length);
      assert.equal(sha256(bin), sha256(photo), 'PHOTO BINVAL round-trips byte for byte');
    });
  }

  test('a vCard set by slixmpp (unicode text, PHOTO BINVAL) is read back intact by another account with @xmpp/client', async () => {
    const [disco, set, own] = await slixmpp(srv.port, 'alice@localhost/sli', 'alice-pw', [
      { op: 'disco-info' },
      { op: 'vcard-set', fn: FN, nickname: NICK, desc: DESC, photo_type: 'image/png', photo_file: photoFile },
      { op: 'vcard-get', jid: null },
    ]);
    // XEP-0054 §4: the server advertises vcard-temp.
    assert.ok((disco!.features as string[]).includes('vcard-temp'), JSON.stringify(disco));
    assert.equal(set!.ok, true, JSON.stringify(set));
    assert.equal(own!.ok, true, JSON.stringify(own));
    assert.deepEqual(own!.vcard, { children: 4, ...expectedVcard() });
    await bobReadsAlicesVcard();
  });

  test(`an over-size vCard is refused with not-acceptable and the stored one stays; another account may not set it (forbidden)`, async () => {
    const [big, own] = await slixmpp(srv.port, 'alice@localhost/sli', 'alice-pw', [
      { op: 'vcard-set', fn: 'too big', photo_file: bigPhotoFile },
      { op: 'vcard-get', jid: 'alice@localhost' },
    ]);
    // The PHOTO alone is 4/3 of 120 KiB in base64: over the 128 KiB default.
    assert.ok(Math.ceil((120 * 1024) / 3) * 4 > srv.config.modules.vcard.max_size);
    assert.equal(big!.ok, false);
    assert.equal(big!.condition, 'not-acceptable');
    assert.equal(big!.etype, 'modify');
    assert.match(big!.text as string, /at most 131072 bytes/);
    assert.deepEqual(own!.vcard, { children: 4, ...expectedVcard() });

    // XEP-0054 §3.2: setting someone else's vCard → forbidden (slixmpp and @xmpp/client).
    const [other] = await slixmpp(srv.port, 'carol@localhost/sli', 'carol-pw', [{ op: 'vcard-set', to: 'alice@localhost', fn: 'Mallory' }]);
    assert.deepEqual([other!.ok, other!.condition], [false, 'forbidden']);
    await withXmppjs(srv.port, 'bob', 'bob-pw', async (bob) => {
      const cond = await iqCondition(
        bob.iqCaller.request(xml('iq', { type: 'set', to: 'alice@localhost' }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Mallory')))),
      );
      assert.equal(cond, 'forbidden');
    });
    await bobReadsAlicesVcard();
  });

  test('no vCard (never set, or cleared with an empty one): empty <vCard/> for oneself (§3.1); service-unavailable for others and for no account (§3.3)', async () => {
    const [own, ofCarolNone, setFn, withFn, clear, cleared] = await slixmpp(srv.port, 'carol@localhost/sli', 'carol-pw', [
      { op: 'vcard-get', jid: null },
      { op: 'vcard-get', jid: 'carol@localhost' },
      { op: 'vcard-set', fn: 'Carol' },
      { op: 'vcard-get', jid: null },
      { op: 'vcard-set' },
      { op: 'vcard-get', jid: null },
    ]);
    assert.deepEqual([setFn!.ok, clear!.ok], [true, true]);
    assert.equal((withFn!.vcard as { fn: string }).fn, 'Carol');
    assert.equal((cleared!.vcard as { children: number }).children, 0);
    assert.equal((await new KvStore(srv.server.storage).all('localhost', 'carol', 'vcard')).size, 0);
    assert.equal(own!.ok, true);
    assert.equal((own!.vcard as { children: number }).children, 0);
    assert.equal(ofCarolNone!.ok, true);
    assert.equal((ofCarolNone!.vcard as { children: number }).children, 0);
    await withXmppjs(srv.port, 'bob', 'bob-pw', async (bob) => {
      for (const to of ['carol@localhost', 'nobody@localhost']) {
        const cond = await iqCondition(bob.iqCaller.request(xml('iq', { type: 'get', to }, xml('vCard', { xmlns: 'vcard-temp' }))));
        assert.equal(cond, 'service-unavailable', to);
      }
    });
  });

  test('private XML: several elements in one set, two namespaces kept apart, unknown → empty, reserved → not-acceptable', async () => {
    const r = await slixmpp(srv.port, 'alice@localhost/sli', 'alice-pw', [
      {
        op: 'private-set',
        xml: [
          "<prefs xmlns='urn:example:a'><nick>Алиса</nick><theme dark='yes'/></prefs>",
          "<prefs xmlns='urn:example:b'><nick>b-nick</nick></prefs>",
          "<storage xmlns='storage:bookmarks'><conference jid='room@muc.localhost' name='Room ✓' autojoin='true'/></storage>",
        ],
      },
      { op: 'private-get', ns: 'urn:example:a', name: 'prefs' },
      { op: 'private-get', ns: 'urn:example:b', name: 'prefs' },
      { op: 'private-get', ns: 'storage:bookmarks', name: 'storage' },
      { op: 'private-get', ns: 'urn:example:never', name: 'prefs' },
      // Replacing one element leaves the other namespace alone.
      { op: 'private-set', xml: ["<prefs xmlns='urn:example:b'><nick>b-two</nick></prefs>"] },
      { op: 'private-get', ns: 'urn:example:a', name: 'prefs' },
      { op: 'private-get', ns: 'urn:example:b', name: 'prefs' },
      // XEP-0049 §2.3, §3: reserved namespaces, and a child without a namespace of its own.
      { op: 'private-set', xml: ["<x xmlns='jabber:client'/>"] },
      { op: 'private-set', xml: ["<query xmlns='jabber:iq:private'/>"] },
      { op: 'private-set', xml: ['<nons><a/></nons>'] },
      { op: 'private-get', ns: 'jabber:server', name: 'x' },
      // A rejected set stores nothing of the request, not even its valid elements.
      { op: 'private-set', xml: ["<prefs xmlns='urn:example:a'><nick>lost</nick></prefs>", "<x xmlns='jabber:client'/>"] },
      { op: 'private-get', ns: 'urn:example:a', name: 'prefs' },
    ]);
    const [set, a, b, bm, never, set2, a2, b2, rClient, rPrivate, rNoNs, rGet, rMixed, a3] = r as Array<SliEvent & { items: Array<{ ns: string; name: string; children: number; text: string }>; xml: string[] }>;
    for (const e of [set, set2]) assert.equal(e!.ok, true, JSON.stringify(e));
    assert.deepEqual(a!.items, [{ ns: 'urn:example:a', name: 'prefs', children: 2, text: 'Алиса' }]);
    assert.match(a!.xml[0]!, /dark="yes"/);
    assert.deepEqual(b!.items, [{ ns: 'urn:example:b', name: 'prefs', children: 1, text: 'b-nick' }]);
    assert.match(bm!.xml[0]!, /name="Room ✓"/);
    assert.match(bm!.xml[0]!, /jid="room@muc.localhost"/);
    assert.deepEqual(never!.items, [{ ns: 'urn:example:never', name: 'prefs', children: 0, text: '' }]);
    assert.deepEqual(a2!.items, a!.items);
    assert.deepEqual(b2!.items, [{ ns: 'urn:example:b', name: 'prefs', children: 1, text: 'b-two' }]);
    for (const e of [rClient, rPrivate, rNoNs, rGet, rMixed]) {
      assert.deepEqual([e!.ok, e!.condition], [false, 'not-acceptable'], JSON.stringify(e));
    }
    assert.deepEqual(a3!.items, a!.items);
  });

  test('private XML is for the account itself only: forbidden to others (slixmpp, @xmpp/client), and not shared between accounts', async () => {
    const [get, set, ownEmpty] = await slixmpp(srv.port, 'bob@localhost/sli', 'bob-pw', [
      { op: 'private-get', to: 'alice@localhost', ns: 'urn:example:a', name: 'prefs' },
      { op: 'private-set', to: 'alice@localhost', xml: ["<prefs xmlns='urn:example:a'><nick>bob was here</nick></prefs>"] },
      { op: 'private-get', ns: 'urn:example:a', name: 'prefs' },
    ]);
    assert.deepEqual([get!.ok, get!.condition], [false, 'forbidden']);
    assert.deepEqual([set!.ok, set!.condition], [false, 'forbidden']);
    assert.deepEqual((ownEmpty as SliEvent & { items: unknown[] }).items, [{ ns: 'urn:example:a', name: 'prefs', children: 0, text: '' }]);
    await withXmppjs(srv.port, 'carol', 'carol-pw', async (carol) => {
      for (const to of ['alice@localhost', 'nobody@localhost']) {
        const cond = await iqCondition(
          carol.iqCaller.request(xml('iq', { type: 'get', to }, xml('query', { xmlns: 'jabber:iq:private' }, xml('prefs', { xmlns: 'urn:example:a' })))),
        );
        assert.equal(cond, 'forbidden', to);
      }
    });
    // Alice's data is untouched; she reads it with @xmpp/client too.
    await withXmppjs(srv.port, 'alice', 'alice-pw', async (alice) => {
      const res = await alice.iqCaller.request(
        xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:private' }, xml('prefs', { xmlns: 'urn:example:a' }))),
      );
      assert.equal(res.getChild('query', 'jabber:iq:private')?.getChild('prefs', 'urn:example:a')?.getChildText('nick'), 'Алиса');
    });
  });

  test('vCards and private XML survive a server restart on the same data directory', async () => {
    await srv.stop();
    srv = await startTestServer({}, dataDir);
    await bobReadsAlicesVcard();
    const [a, b] = await slixmpp(srv.port, 'alice@localhost/sli', 'alice-pw', [
      { op: 'private-get', ns: 'urn:example:a', name: 'prefs' },
      { op: 'private-get', ns: 'urn:example:b', name: 'prefs' },
    ]);
    assert.deepEqual((a as SliEvent & { items: unknown[] }).items, [{ ns: 'urn:example:a', name: 'prefs', children: 2, text: 'Алиса' }]);
    assert.deepEqual((b as SliEvent & { items: unknown[] }).items, [{ ns: 'urn:example:b', name: 'prefs', children: 1, text: 'b-two' }]);
  });

  test('removing the account deletes its vCard and private XML (kv_store rows gone; a new account of that name starts empty)', async () => {
    const kv = new KvStore(srv.server.storage);
    assert.equal((await kv.all('localhost', 'alice', 'vcard')).size, 1);
    assert.deepEqual([...(await kv.all('localhost', 'alice', 'private')).keys()], [
      '{storage:bookmarks}storage',
      '{urn:example:a}prefs',
      '{urn:example:b}prefs',
    ]);
    assert.equal(await srv.server.accounts.remove('alice'), true);
    assert.equal((await kv.all('localhost', 'alice', 'vcard')).size, 0);
    assert.equal((await kv.all('localhost', 'alice', 'private')).size, 0);
    // Bob's data is not touched.
    assert.equal((await kv.all('localhost', 'bob', 'private')).size, 0);

    await withXmppjs(srv.port, 'bob', 'bob-pw', async (bob) => {
      const cond = await iqCondition(bob.iqCaller.request(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('vCard', { xmlns: 'vcard-temp' }))));
      assert.equal(cond, 'service-unavailable');
    });
    await srv.createUser('alice', 'alice-pw2');
    const [v, p] = await slixmpp(srv.port, 'alice@localhost/sli', 'alice-pw2', [
      { op: 'vcard-get', jid: null },
      { op: 'private-get', ns: 'urn:example:a', name: 'prefs' },
    ]);
    assert.equal((v!.vcard as { children: number }).children, 0);
    assert.deepEqual((p as SliEvent & { items: unknown[] }).items, [{ ns: 'urn:example:a', name: 'prefs', children: 0, text: '' }]);
  });
});
