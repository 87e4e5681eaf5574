// Multi-user chat (XEP-0045) with an independent client: slixmpp's xep_0045 plugin
// (interop/slixmpp_muc.py), two or three processes per test against a real server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { requireSlixmpp, runSlixmppMuc, type SliEvent, type SliRun } from './helpers/slixmpp.ts';

const MUC = 'conference.localhost';
const USERS = ['alice', 'bob', 'carol', 'dave'] as const;
type User = (typeof USERS)[number];

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A presence event printed by the driver. */
interface PresenceEv extends SliEvent {
  frm: string;
  type: string;
  codes: number[];
  item: { affiliation?: string; role?: string; jid?: string; nick?: string } | null;
  actor?: string;
  reason?: string;
  destroy?: { jid: string | null; reason: string | null };
  occupant_id: string | null;
  ext: Array<{ ns: string; name: string; text: string | null; xml: string }>;
  condition?: string;
}

/** A message event printed by the driver. */
interface MessageEv extends SliEvent {
  frm: string;
  type: string;
  body: string | null;
  subject: string | null;
  delay: { stamp: string; from: string } | null;
  occupant_id: string | null;
  codes: number[];
  private: boolean;
  invite?: { from: string; reason: string | null };
  password?: string;
  condition?: string;
}

/** A command result. */
interface ResultEv extends SliEvent {
  ok: boolean;
  condition?: string;
  text?: string;
  [k: string]: unknown;
}

interface JoinResult extends ResultEv {
  nick: string;
  codes: number[];
  item: { affiliation?: string; role?: string; jid?: string };
  occupant_id: string | null;
  occupants: string[];
  history: Array<{ frm: string; body: string; stamp: string; delay_from: string }>;
  subject: { frm: string; text: string };
}

const isPresence = (e: SliEvent): e is PresenceEv => e.event === 'presence';
const isMessage = (e: SliEvent): e is MessageEv => e.event === 'message';

/** One slixmpp process: a user with the xep_0045 plugin, driven by JSON commands. */
class Client {
  private seq = 0;
  private constructor(
    readonly user: string,
    readonly jid: string,
    readonly run: SliRun,
  ) {}

  static async start(port: number, user: string): Promise<Client> {
    const jid = `${user}@localhost`;
    const c = new Client(user, jid, runSlixmppMuc(port, jid, `${user}-pw`));
    await c.run.waitEvent('ready', 20000);
    return c;
  }

  /** Index of the next event: to wait only for what comes after an action. */
  mark(): number {
    return this.run.events.length;
  }

  async cmd(cmd: string, args: Record<string, unknown> = {}): Promise<ResultEv> {
    const id = `${cmd}-${++this.seq}`;
    this.run.send(JSON.stringify({ id, cmd, ...args }));
    return (await this.waitFor((e) => e.event === 'result' && e.id === id, `result of ${cmd}`, 0, 15000)) as ResultEv;
  }

  /** Runs a command that must succeed. */
  async ok(cmd: string, args: Record<string, unknown> = {}): Promise<ResultEv> {
    const r = await this.cmd(cmd, args);
    assert.equal(r.ok, true, `${this.user} ${cmd} ${JSON.stringify(args)} failed: ${JSON.stringify(r)}`);
    return r;
  }

  /** Runs a command that must fail with `condition`. */
  async fails(cmd: string, args: Record<string, unknown>, condition: string): Promise<ResultEv> {
    const r = await this.cmd(cmd, args);
    assert.equal(r.ok, false, `${this.user} ${cmd} ${JSON.stringify(args)} should fail with ${condition}: ${JSON.stringify(r)}`);
    assert.equal(r.condition, condition, `${this.user} ${cmd}: condition (${JSON.stringify(r)})`);
    return r;
  }

  async join(room: string, nick: string, opts: Record<string, unknown> = {}): Promise<JoinResult> {
    return (await this.ok('join', { room, nick, ...opts })) as JoinResult;
  }

  /** The first event from index `from` on matching `pred`. */
  async waitFor(pred: (e: SliEvent) => boolean, what: string, from = 0, ms = 10000): Promise<SliEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const e = this.run.events.slice(from).find(pred);
      if (e) return e;
      if (Date.now() > deadline) throw new Error(`${this.user}: no ${what}; events since ${from}: ${JSON.stringify(this.run.events.slice(from))}`);
      await pause(25);
    }
  }

  async presence(from: string, pred: (p: PresenceEv) => boolean, what: string, since = 0): Promise<PresenceEv> {
    return (await this.waitFor((e) => isPresence(e) && e.frm === from && pred(e), what, since)) as PresenceEv;
  }

  async message(pred: (m: MessageEv) => boolean, what: string, since = 0): Promise<MessageEv> {
    return (await this.waitFor((e) => isMessage(e) && pred(e), what, since)) as MessageEv;
  }

  /** Events of a kind since `from`. */
  messages(from = 0): MessageEv[] {
    return this.run.events.slice(from).filter(isMessage);
  }

  presences(from = 0): PresenceEv[] {
    return this.run.events.slice(from).filter(isPresence);
  }

  async quit(): Promise<void> {
    this.run.send(JSON.stringify({ id: 'quit', cmd: 'quit' }));
    const t = setTimeout(() => this.run.kill(), 5000);
    const { stderr } = await this.run.done;
    clearTimeout(t);
    if (process.env.SLIXMPP_DEBUG) console.error(`--- ${this.user} stderr ---\n${stderr}`);
  }
}

async function clients(port: number, ...users: User[]): Promise<Client[]> {
  return Promise.all(users.map((u) => Client.start(port, u)));
}

async function quitAll(cs: Client[]): Promise<void> {
  await Promise.all(cs.map((c) => c.quit()));
}

/** Creates `room` as `owner` (201: a new, locked room, §10.1.1) and configures it: instant room (§10.1.2) or the given fields (§10.1.3). */
async function createRoom(owner: Client, room: string, nick: string, fields?: Record<string, unknown>, joinOpts: Record<string, unknown> = {}): Promise<JoinResult> {
  const j = await owner.join(room, nick, joinOpts);
  assert.deepEqual(j.codes, [110, 201], `${room}: self-presence of the creator has 110 and 201 (§10.1.1)`);
  assert.equal(j.item.affiliation, 'owner');
  assert.equal(j.item.role, 'moderator');
  if (fields) await owner.ok('set_config', { room, fields });
  else await owner.ok('instant', { room });
  return j;
}

describe('XEP-0045 multi-user chat with slixmpp (xep_0045)', () => {
  let srv: TestServer;
  before(async () => {
    requireSlixmpp();
    srv = await startTestServer();
    for (const u of USERS) await srv.createUser(u, `${u}-pw`);
  });
  after(() => srv.stop());

  test('three occupants exchange groupchat messages in order; a private message; self-ping (XEP-0410)', async () => {
    const room = `lobby@${MUC}`;
    const [alice, bob, carol] = await clients(srv.port, 'alice', 'bob', 'carol');
    try {
      await createRoom(alice!, room, 'Alice');
      const jb = await bob!.join(room, 'Bob');
      assert.deepEqual(jb.codes, [110]);
      assert.deepEqual(jb.item, { affiliation: 'none', role: 'participant', jid: bob!.run.events.find((e) => e.event === 'ready')!.jid });
      assert.deepEqual(jb.occupants, ['Alice']);
      assert.equal(jb.subject.text, '', 'an empty subject ends the join (§7.2.15)');
      const cm0 = carol!.mark();
      const jc = await carol!.join(room, 'Carol');
      assert.deepEqual(jc.occupants.sort(), ['Alice', 'Bob']);
      // §7.1 / §7.2.3: the others' presence first, then the self-presence, then the subject.
      assert.deepEqual(
        carol!.run.events.slice(cm0).filter((e) => isPresence(e) || isMessage(e)).map((e) => (isPresence(e) ? `presence ${e.frm} ${e.codes.join(',')}` : `subject ${(e as MessageEv).subject}`)).slice(-4),
        [`presence ${room}/Alice `, `presence ${room}/Bob `, `presence ${room}/Carol 110`, 'subject '],
      );
      // Semi-anonymous room (default): moderators see real JIDs, participants do not (§7.2.3, §7.2.4).
      const carolSeenByAlice = await alice!.presence(`${room}/Carol`, (p) => p.type === 'available', 'presence of Carol');
      assert.equal(carolSeenByAlice.item?.jid?.split('/')[0], 'carol@localhost');
      assert.equal(carolSeenByAlice.item?.role, 'participant');
      assert.deepEqual(carolSeenByAlice.codes, []);
      const aliceSeenByCarol = await carol!.presence(`${room}/Alice`, (p) => p.type === 'available', 'presence of Alice');
      assert.equal(aliceSeenByCarol.item?.jid, undefined, 'a participant does not see real JIDs in a semi-anonymous room');
      assert.equal(aliceSeenByCarol.item?.affiliation, 'owner');
      assert.equal(aliceSeenByCarol.item?.role, 'moderator');
      assert.ok(aliceSeenByCarol.occupant_id, 'XEP-0421 occupant-id on presence');

      // Each message is reflected to everyone (§7.4), the sender included; sent one after the other.
      const marks = [alice!, bob!, carol!].map((c) => c.mark());
      const sent: Array<[Client, string, string]> = [
        [alice!, 'Alice', 'Hello from Alice'],
        [bob!, 'Bob', 'Hi Alice, Bob here'],
        [carol!, 'Carol', 'Carol joins the conversation'],
      ];
      for (const [sender, nick, body] of sent) {
        await sender.ok('say', { room, body });
        for (const c of [alice!, bob!, carol!]) await c.message((m) => m.type === 'groupchat' && m.body === body && m.frm === `${room}/${nick}`, `'${body}'`);
      }
      const ids = new Map<string, string>();
      [alice!, bob!, carol!].forEach((c, i) => {
        const got = c.messages(marks[i]).filter((m) => m.type === 'groupchat' && m.body !== null);
        assert.deepEqual(
          got.map((m) => [m.frm, m.body]),
          sent.map(([, nick, body]) => [`${room}/${nick}`, body]),
          `${c.user} sees the three messages in order`,
        );
        for (const m of got) {
          assert.equal(m.delay, null, 'live messages carry no delay');
          assert.ok(m.occupant_id, 'XEP-0421 occupant-id on messages');
          const prev = ids.get(m.frm);
          if (prev) assert.equal(m.occupant_id, prev, 'one occupant-id per occupant, whoever receives it');
          ids.set(m.frm, m.occupant_id!);
        }
      });
      assert.equal(new Set(ids.values()).size, 3);

      // Private message (§7.5): only the addressee gets it, from the sender's occupant JID.
      const aliceMark = alice!.mark();
      await bob!.ok('pm', { to: `${room}/Carol`, body: 'psst, Carol' });
      const pm = await carol!.message((m) => m.body === 'psst, Carol', 'the private message');
      assert.equal(pm.frm, `${room}/Bob`);
      assert.equal(pm.type, 'chat');
      assert.equal(pm.private, true, "a private message carries <x xmlns='http://jabber.org/protocol/muc#user'/> (§7.5)");
      await carol!.ok('pm', { to: `${room}/Bob`, body: 'hi Bob, privately' });
      const reply = await bob!.message((m) => m.body === 'hi Bob, privately', 'the private reply');
      assert.equal(reply.frm, `${room}/Carol`);
      await pause(200);
      assert.equal(alice!.messages(aliceMark).filter((m) => m.body === 'psst, Carol' || m.body === 'hi Bob, privately').length, 0, 'Alice does not see private messages');

      // XEP-0410: self-ping of one's own occupant JID succeeds while joined, not-acceptable after leaving.
      await carol!.ok('ping', { jid: `${room}/Carol` });
      const bobMark = bob!.mark();
      await bob!.ok('leave', { room, nick: 'Bob' });
      const gone = await bob!.presence(`${room}/Bob`, (p) => p.type === 'unavailable', 'own unavailable presence', bobMark);
      assert.deepEqual(gone.codes, [110]);
      assert.equal(gone.item?.role, 'none');
      await carol!.presence(`${room}/Bob`, (p) => p.type === 'unavailable', 'unavailable presence of Bob');
      await bob!.fails('ping', { jid: `${room}/Bob` }, 'not-acceptable');
    } finally {
      await quitAll([alice!, bob!, carol!]);
    }
  });

  test('configuration through the owner form; disco#info shows the features and roominfo', async () => {
    const room = `config@${MUC}`;
    const [alice, bob] = await clients(srv.port, 'alice', 'bob');
    try {
      const j = await alice!.join(room, 'Alice');
      assert.deepEqual(j.codes, [110, 201]);
      // A locked room is not entered by others (§7.2.11: item-not-found).
      await bob!.fails('join', { room, nick: 'Bob' }, 'item-not-found');
      const form = await alice!.ok('get_config', { room });
      assert.equal(form.form_type, 'form');
      const fields = form.fields as Record<string, { type: string; value: unknown }>;
      assert.deepEqual(fields.FORM_TYPE, { type: 'hidden', value: ['http://jabber.org/protocol/muc#roomconfig'] });
      for (const [v, type] of [
        ['muc#roomconfig_roomname', 'text-single'],
        ['muc#roomconfig_roomdesc', 'text-single'],
        ['muc#roomconfig_persistentroom', 'boolean'],
        ['muc#roomconfig_publicroom', 'boolean'],
        ['muc#roomconfig_moderatedroom', 'boolean'],
        ['muc#roomconfig_membersonly', 'boolean'],
        ['muc#roomconfig_passwordprotectedroom', 'boolean'],
        ['muc#roomconfig_roomsecret', 'text-private'],
        ['muc#roomconfig_whois', 'list-single'],
        ['muc#roomconfig_changesubject', 'boolean'],
        ['muc#roomconfig_maxusers', 'list-single'],
        ['muc#roomconfig_roomowners', 'jid-multi'],
      ] as const) {
        assert.equal(fields[v]?.type, type, `form field ${v} of type ${type}`);
      }
      assert.deepEqual(fields['muc#roomconfig_roomowners']!.value, ['alice@localhost']);
      await alice!.ok('set_config', {
        room,
        fields: {
          'muc#roomconfig_roomname': 'Configured Room',
          'muc#roomconfig_roomdesc': 'Set through the owner form by slixmpp',
          'muc#roomconfig_persistentroom': true,
          'muc#roomconfig_publicroom': false,
          'muc#roomconfig_moderatedroom': true,
          'muc#roomconfig_membersonly': true,
          'muc#roomconfig_passwordprotectedroom': true,
          'muc#roomconfig_roomsecret': 'c0nfig',
          'muc#roomconfig_changesubject': true,
          'muc#roomconfig_whois': 'anyone',
        },
      });
      const again = (await alice!.ok('get_config', { room })).fields as Record<string, { type: string; value: unknown }>;
      assert.deepEqual(
        Object.fromEntries(
          [
            'muc#roomconfig_roomname',
            'muc#roomconfig_roomdesc',
            'muc#roomconfig_persistentroom',
            'muc#roomconfig_publicroom',
            'muc#roomconfig_moderatedroom',
            'muc#roomconfig_membersonly',
            'muc#roomconfig_passwordprotectedroom',
            'muc#roomconfig_roomsecret',
            'muc#roomconfig_changesubject',
            'muc#roomconfig_whois',
          ].map((v) => [v, again[v]!.value]),
        ),
        {
          'muc#roomconfig_roomname': 'Configured Room',
          'muc#roomconfig_roomdesc': 'Set through the owner form by slixmpp',
          'muc#roomconfig_persistentroom': '1',
          'muc#roomconfig_publicroom': '0',
          'muc#roomconfig_moderatedroom': '1',
          'muc#roomconfig_membersonly': '1',
          'muc#roomconfig_passwordprotectedroom': '1',
          'muc#roomconfig_roomsecret': 'c0nfig',
          'muc#roomconfig_changesubject': '1',
          'muc#roomconfig_whois': 'anyone',
        },
        'the form shows the submitted configuration',
      );

      // §6.4: disco#info of the room, asked by a non-occupant.
      const info = await bob!.ok('disco_info', { jid: room });
      assert.deepEqual(info.identities, [{ category: 'conference', type: 'text', name: 'Configured Room' }]);
      const features = info.features as string[];
      for (const f of ['http://jabber.org/protocol/muc', 'muc_persistent', 'muc_hidden', 'muc_moderated', 'muc_membersonly', 'muc_passwordprotected', 'muc_nonanonymous']) {
        assert.ok(features.includes(f), `feature ${f} in ${JSON.stringify(features)}`);
      }
      for (const f of ['muc_temporary', 'muc_public', 'muc_unmoderated', 'muc_open', 'muc_unsecured', 'muc_semianonymous']) {
        assert.ok(!features.includes(f), `no feature ${f}`);
      }
      const roominfo = (info.forms as Record<string, Record<string, string[]>>)['http://jabber.org/protocol/muc#roominfo'];
      assert.ok(roominfo, `a muc#roominfo form in ${JSON.stringify(info.forms)}`);
      assert.deepEqual(roominfo['muc#roominfo_description'], ['Set through the owner form by slixmpp']);
      assert.deepEqual(roominfo['muc#roominfo_occupants'], ['1']);
      assert.ok(['1', 'true'].includes(roominfo['muc#roominfo_subjectmod']?.[0] ?? ''), `muc#roominfo_subjectmod true: ${JSON.stringify(roominfo)}`);
      // A hidden room is not listed in the service's disco#items (§6.3, muc_hidden of §15.3).
      const items = (await bob!.ok('disco_items', { jid: MUC })).items as Array<{ jid: string }>;
      assert.ok(!items.some((i) => i.jid === room), `hidden room not listed: ${JSON.stringify(items)}`);

      // A later change is announced to the occupants with 104 (§10.2.1), and 173 when the room becomes semi-anonymous.
      const m = alice!.mark();
      await alice!.ok('set_config', { room, fields: { 'muc#roomconfig_roomname': 'Renamed Room', 'muc#roomconfig_whois': 'moderators' } });
      const note = await alice!.message((x) => x.frm === room && x.codes.includes(104), 'the configuration change notice', m);
      assert.deepEqual(note.codes, [104, 173]);
      const info2 = await bob!.ok('disco_info', { jid: room });
      assert.equal((info2.identities as Array<{ name: string }>)[0]!.name, 'Renamed Room');
      assert.ok((info2.features as string[]).includes('muc_semianonymous'));

      // A non-owner may not get the form (§10.1.3: forbidden).
      await bob!.fails('get_config', { room }, 'forbidden');
      // Destroy (§10.9): the occupant gets unavailable presence with <destroy/>; the room is gone.
      const d = alice!.mark();
      await alice!.ok('destroy', { room, reason: 'test over' });
      const bye = await alice!.presence(`${room}/Alice`, (p) => p.type === 'unavailable', 'unavailable presence after destroy', d);
      assert.equal(bye.destroy?.reason, 'test over');
      assert.equal(bye.item?.role, 'none');
      await bob!.fails('disco_info', { jid: room }, 'item-not-found');
    } finally {
      await quitAll([alice!, bob!]);
    }
  });

  test('password-protected and members-only rooms; a mediated invitation makes a member', async () => {
    const secret = `secret@${MUC}`;
    const club = `club@${MUC}`;
    const [alice, bob, carol] = await clients(srv.port, 'alice', 'bob', 'carol');
    try {
      await createRoom(alice!, secret, 'Alice', { 'muc#roomconfig_passwordprotectedroom': true, 'muc#roomconfig_roomsecret': 'opensesame' });
      // §7.2.6: no password or a wrong one → not-authorized.
      await bob!.fails('join', { room: secret, nick: 'Bob' }, 'not-authorized');
      await bob!.fails('join', { room: secret, nick: 'Bob', password: 'letmein' }, 'not-authorized');
      const jb = await bob!.join(secret, 'Bob', { password: 'opensesame' });
      assert.deepEqual(jb.codes, [110]);
      assert.equal(jb.item.role, 'participant');
      await alice!.presence(`${secret}/Bob`, (p) => p.type === 'available', 'Bob in the password room');
      // §7.8.2: an invitation to a password-protected room SHOULD carry the password.
      const cm = carol!.mark();
      await alice!.ok('invite', { room: secret, jid: 'carol@localhost' });
      const pwInvite = await carol!.message((m) => m.invite !== undefined, 'the invitation to the password room', cm);
      assert.equal(pwInvite.frm, secret);
      assert.equal(pwInvite.password, 'opensesame');

      await createRoom(alice!, club, 'Alice', { 'muc#roomconfig_membersonly': true });
      // §7.2.7: not on the member list → registration-required.
      await carol!.fails('join', { room: club, nick: 'Carol' }, 'registration-required');
      await alice!.ok('set_affiliation', { room: club, jid: 'carol@localhost', affiliation: 'member' });
      const jc = await carol!.join(club, 'Carol');
      assert.equal(jc.item.affiliation, 'member');
      assert.equal(jc.item.role, 'participant');
      assert.deepEqual((await alice!.ok('affiliations', { room: club, affiliation: 'member' })).jids, ['carol@localhost']);

      // §7.8.2: a mediated invitation, from the room, with the inviter; in a members-only room the invitee becomes a member (§9.3).
      await bob!.fails('join', { room: club, nick: 'Bob' }, 'registration-required');
      const bm = bob!.mark();
      await alice!.ok('invite', { room: club, jid: 'bob@localhost', reason: 'join the club' });
      const inv = await bob!.message((m) => m.invite !== undefined, 'the invitation', bm);
      assert.equal(inv.frm, club);
      assert.equal(inv.invite!.from.split('/')[0], 'alice@localhost');
      assert.equal(inv.invite!.reason, 'join the club');
      const jb2 = await bob!.join(club, 'Bob');
      assert.equal(jb2.item.affiliation, 'member');
    } finally {
      await quitAll([alice!, bob!, carol!]);
    }
  });

  test('kick (307), ban (301) and voice in a moderated room', async () => {
    const arena = `arena@${MUC}`;
    const stage = `stage@${MUC}`;
    const [alice, bob, carol] = await clients(srv.port, 'alice', 'bob', 'carol');
    try {
      await createRoom(alice!, arena, 'Alice');
      await bob!.join(arena, 'Bob');
      await carol!.join(arena, 'Carol');

      // §8.2 kick: role none; the kicked occupant gets 110 + 307, everyone else 307.
      let marks = [alice!, bob!, carol!].map((c) => c.mark());
      await alice!.ok('set_role', { room: arena, nick: 'Bob', role: 'none', reason: 'Cool it' });
      const kickedSelf = await bob!.presence(`${arena}/Bob`, (p) => p.type === 'unavailable', 'own kick presence', marks[1]);
      assert.deepEqual(kickedSelf.codes, [110, 307]);
      assert.equal(kickedSelf.item?.role, 'none');
      assert.equal(kickedSelf.reason, 'Cool it');
      assert.equal(kickedSelf.actor, 'Alice');
      for (const [c, i] of [[alice!, 0], [carol!, 2]] as const) {
        const p = await c.presence(`${arena}/Bob`, (x) => x.type === 'unavailable', `${c.user} sees the kick`, marks[i]);
        assert.deepEqual(p.codes, [307]);
        assert.equal(p.item?.role, 'none');
        assert.equal(p.item?.affiliation, 'none');
      }
      // A kicked user may come back.
      await bob!.join(arena, 'Bob');

      // §9.1 ban: affiliation outcast; 110 + 301 to the banned occupant, 301 to the others; re-entry is forbidden (§7.2.8).
      marks = [alice!, bob!, carol!].map((c) => c.mark());
      await alice!.ok('set_affiliation', { room: arena, jid: 'bob@localhost', affiliation: 'outcast', reason: 'Treason' });
      const bannedSelf = await bob!.presence(`${arena}/Bob`, (p) => p.type === 'unavailable', 'own ban presence', marks[1]);
      assert.deepEqual(bannedSelf.codes, [110, 301]);
      assert.equal(bannedSelf.item?.affiliation, 'outcast');
      assert.equal(bannedSelf.item?.role, 'none');
      assert.equal(bannedSelf.reason, 'Treason');
      assert.equal(bannedSelf.actor, 'Alice');
      for (const [c, i] of [[alice!, 0], [carol!, 2]] as const) {
        const p = await c.presence(`${arena}/Bob`, (x) => x.type === 'unavailable', `${c.user} sees the ban`, marks[i]);
        assert.deepEqual(p.codes, [301]);
        assert.equal(p.item?.affiliation, 'outcast');
      }
      await bob!.fails('join', { room: arena, nick: 'Bob' }, 'forbidden');
      assert.deepEqual((await alice!.ok('affiliations', { room: arena, affiliation: 'outcast' })).jids, ['bob@localhost']);

      // Moderated room: a newcomer without affiliation is a visitor (§5.1.2); visitors may not speak (§7.4: forbidden).
      await createRoom(alice!, stage, 'Alice', { 'muc#roomconfig_moderatedroom': true });
      const jc = await carol!.join(stage, 'Carol');
      assert.equal(jc.item.role, 'visitor');
      let cm = carol!.mark();
      let am = alice!.mark();
      await carol!.ok('say', { room: stage, body: 'Can anyone hear me?' });
      const err = await carol!.message((m) => m.type === 'error', 'the error for a visitor message', cm);
      assert.equal(err.condition, 'forbidden');
      assert.equal(err.frm, stage);
      // §8.3 grant voice: role participant, seen by all; then the message goes through.
      await alice!.ok('set_role', { room: stage, nick: 'Carol', role: 'participant' });
      const voiced = await carol!.presence(`${stage}/Carol`, (p) => p.type === 'available' && p.item?.role === 'participant', 'voice granted', cm);
      assert.deepEqual(voiced.codes, [110]);
      await alice!.presence(`${stage}/Carol`, (p) => p.type === 'available' && p.item?.role === 'participant', 'Alice sees the voice', am);
      await carol!.ok('say', { room: stage, body: 'Now I have a voice' });
      await alice!.message((m) => m.type === 'groupchat' && m.body === 'Now I have a voice' && m.frm === `${stage}/Carol`, 'the voiced message', am);
      assert.equal(alice!.messages(am).filter((m) => m.body === 'Can anyone hear me?').length, 0, 'the visitor message was not reflected');
      // §8.4 revoke voice: back to visitor, and forbidden again.
      cm = carol!.mark();
      am = alice!.mark();
      await alice!.ok('set_role', { room: stage, nick: 'Carol', role: 'visitor' });
      await carol!.presence(`${stage}/Carol`, (p) => p.type === 'available' && p.item?.role === 'visitor', 'voice revoked', cm);
      await alice!.presence(`${stage}/Carol`, (p) => p.type === 'available' && p.item?.role === 'visitor', 'Alice sees the revocation', am);
      await carol!.ok('say', { room: stage, body: 'Silenced again?' });
      const err2 = await carol!.message((m) => m.type === 'error', 'the error after revocation', cm);
      assert.equal(err2.condition, 'forbidden');
      await pause(100);
      assert.equal(alice!.messages(am).filter((m) => m.body === 'Silenced again?').length, 0);
    } finally {
      await quitAll([alice!, bob!, carol!]);
    }
  });

  test('nickname change (303) and nickname conflict', async () => {
    const room = `names@${MUC}`;
    const [alice, bob, carol] = await clients(srv.port, 'alice', 'bob', 'carol');
    try {
      await createRoom(alice!, room, 'Alice');
      await bob!.join(room, 'Bob');
      const am = alice!.mark();
      const bm = bob!.mark();
      const r = await bob!.ok('nick', { room, nick: 'Robert' });
      assert.deepEqual(r.codes, [110]);
      // §7.6: unavailable from the old nick with 303 and the new nick, then available from the new one.
      const oldSelf = await bob!.presence(`${room}/Bob`, (p) => p.type === 'unavailable', 'own 303', bm);
      assert.deepEqual(oldSelf.codes, [110, 303]);
      assert.equal(oldSelf.item?.nick, 'Robert');
      const oldSeen = await alice!.presence(`${room}/Bob`, (p) => p.type === 'unavailable', '303 seen by Alice', am);
      assert.deepEqual(oldSeen.codes, [303]);
      assert.equal(oldSeen.item?.nick, 'Robert');
      const newSeen = await alice!.presence(`${room}/Robert`, (p) => p.type === 'available', 'presence from the new nick', am);
      assert.equal(newSeen.item?.role, 'participant');
      assert.equal(newSeen.occupant_id, oldSeen.occupant_id, 'the occupant-id survives a nickname change (XEP-0421)');
      const ev = alice!.presences(am).filter((p) => p.frm === `${room}/Bob` || p.frm === `${room}/Robert`);
      assert.deepEqual(ev.map((p) => [p.frm, p.type]), [[`${room}/Bob`, 'unavailable'], [`${room}/Robert`, 'available']], 'the 303 comes before the new presence');
      await bob!.ok('say', { room, body: 'I am Robert now' });
      await alice!.message((m) => m.body === 'I am Robert now' && m.frm === `${room}/Robert`, 'a message from the new nick', am);

      // The same change sent as a join to another nick (presence with the MUC <x/>, as join_muc_wait sends).
      const am2 = alice!.mark();
      const bm2 = bob!.mark();
      await bob!.ok('nick', { room, nick: 'Bobby', via: 'join' });
      const viaJoin = await bob!.presence(`${room}/Robert`, (p) => p.type === 'unavailable', 'own 303 (join form)', bm2);
      assert.deepEqual(viaJoin.codes, [110, 303]);
      assert.equal(viaJoin.item?.nick, 'Bobby');
      const seen2 = await alice!.presence(`${room}/Robert`, (p) => p.type === 'unavailable', '303 seen by Alice (join form)', am2);
      assert.deepEqual(seen2.codes, [303]);
      await alice!.presence(`${room}/Bobby`, (p) => p.type === 'available', 'presence from Bobby', am2);

      // §7.2.9: entering with a nickname in use → conflict; §7.6: changing to one in use → conflict.
      await carol!.fails('join', { room, nick: 'Alice' }, 'conflict');
      await bob!.fails('nick', { room, nick: 'Alice' }, 'conflict');
      const jc = await carol!.join(room, 'Carol');
      assert.deepEqual(jc.occupants.sort(), ['Alice', 'Bobby']);
    } finally {
      await quitAll([alice!, bob!, carol!]);
    }
  });

  test('discussion history on entering: maxstanzas, maxchars=0, since; the subject after the history', async () => {
    const room = `history@${MUC}`;
    const [alice, bob, carol] = await clients(srv.port, 'alice', 'bob', 'carol');
    try {
      await createRoom(alice!, room, 'Alice');
      const start = Date.now();
      let since = '';
      for (let i = 1; i <= 5; i++) {
        const m = alice!.mark();
        await alice!.ok('say', { room, body: `history ${i}` });
        await alice!.message((x) => x.body === `history ${i}`, `reflection of message ${i}`, m);
        if (i === 3) {
          await pause(30);
          since = new Date().toISOString();
          await pause(30);
        }
      }
      await alice!.ok('subject', { room, subject: 'Today: history' });
      await alice!.message((x) => x.subject === 'Today: history', 'the subject change');

      // §7.2.14 maxstanzas=2: the last two, with XEP-0203 delay from the room; then the subject (§7.2.15).
      const bm = bob!.mark();
      const jb = await bob!.join(room, 'Bob', { maxstanzas: 2 });
      assert.deepEqual(jb.history.map((h) => h.body), ['history 4', 'history 5']);
      for (const h of jb.history) {
        assert.equal(h.frm, `${room}/Alice`);
        assert.equal(h.delay_from, room);
        const t = Date.parse(h.stamp);
        assert.ok(t >= start - 1000 && t <= Date.now() + 1000, `delay stamp ${h.stamp} is when the message was sent`);
      }
      assert.equal(jb.subject.text, 'Today: history');
      assert.equal(jb.subject.frm, `${room}/Alice`);
      // Order of events (§7.1): self-presence, history, subject.
      const evs = bob!.run.events.slice(bm);
      const iSelf = evs.findIndex((e) => isPresence(e) && e.frm === `${room}/Bob` && e.codes.includes(110));
      const iHist = evs.map((e, i) => (isMessage(e) && e.delay !== null ? i : -1)).filter((i) => i >= 0);
      const iSubject = evs.findIndex((e) => isMessage(e) && e.subject === 'Today: history');
      assert.equal(iHist.length, 2, `two history messages: ${JSON.stringify(evs)}`);
      assert.ok(iSelf >= 0 && iSelf < iHist[0]!, 'self-presence before the history');
      assert.ok(iHist[1]! < iSubject, 'history before the subject');
      const subjectEv = evs[iSubject] as MessageEv;
      assert.equal(subjectEv.body, null, 'the subject message has no body');

      // maxchars=0: no history, the subject still.
      const cm = carol!.mark();
      const jc = await carol!.join(room, 'Carol', { maxchars: 0 });
      assert.deepEqual(jc.history, []);
      assert.equal(jc.subject.text, 'Today: history');
      assert.equal(carol!.messages(cm).filter((m) => m.body !== null).length, 0);

      // since: only what was sent after the given time.
      await bob!.ok('leave', { room, nick: 'Bob' });
      await bob!.presence(`${room}/Bob`, (p) => p.type === 'unavailable', 'left', bm);
      const jb2 = await bob!.join(room, 'Bob', { since });
      assert.deepEqual(jb2.history.map((h) => h.body), ['history 4', 'history 5']);
      // seconds: the last hour is everything.
      await carol!.ok('leave', { room, nick: 'Carol' });
      await carol!.presence(`${room}/Carol`, (p) => p.type === 'unavailable', 'left', cm);
      const jc2 = await carol!.join(room, 'Carol', { seconds: 3600 });
      assert.deepEqual(jc2.history.map((h) => h.body), ['history 1', 'history 2', 'history 3', 'history 4', 'history 5']);
    } finally {
      await quitAll([alice!, bob!, carol!]);
    }
  });

  test('a custom presence extension is kept per occupant and shown to later joiners', async () => {
    const room = `game@${MUC}`;
    const [alice, bob] = await clients(srv.port, 'alice', 'bob');
    try {
      const ja = await createRoom(alice!, room, 'Alice', undefined, { ext: "<avatar xmlns='urn:example:game'>dragon</avatar>" });
      assert.deepEqual(ja.codes, [110, 201]);
      const bm = bob!.mark();
      const jb = await bob!.join(room, 'Bob');
      assert.deepEqual(jb.occupants, ['Alice']);
      const seen = await bob!.presence(`${room}/Alice`, (p) => p.type === 'available', "Alice's presence", bm);
      assert.deepEqual(
        seen.ext.map((e) => [e.ns, e.name, e.text]),
        [['urn:example:game', 'avatar', 'dragon']],
        `the extension of Alice's join presence: ${JSON.stringify(seen)}`,
      );
      const ownBob = await bob!.presence(`${room}/Bob`, (p) => p.codes.includes(110), 'own presence', bm);
      assert.deepEqual(ownBob.ext, []);
      // An update of the extension reaches both (the owner's own copy with 110).
      const am = alice!.mark();
      const bm2 = bob!.mark();
      await alice!.ok('presence', { room, nick: 'Alice', ext: "<avatar xmlns='urn:example:game'>phoenix</avatar>", status: 'rising' });
      const upd = await bob!.presence(`${room}/Alice`, (p) => p.type === 'available', 'the update', bm2);
      assert.deepEqual(upd.ext.map((e) => [e.ns, e.name, e.text]), [['urn:example:game', 'avatar', 'phoenix']]);
      assert.equal(upd.status, 'rising');
      const self = await alice!.presence(`${room}/Alice`, (p) => p.type === 'available', 'own update', am);
      assert.deepEqual(self.codes, [110]);
      assert.deepEqual(self.ext.map((e) => [e.ns, e.name, e.text]), [['urn:example:game', 'avatar', 'phoenix']]);
      // A third-party copy of the occupant's state: a newcomer after the update sees the new one.
      await bob!.ok('leave', { room, nick: 'Bob' });
      await bob!.presence(`${room}/Bob`, (p) => p.type === 'unavailable', 'left', bm2);
      const bm3 = bob!.mark();
      await bob!.join(room, 'Bob');
      const later = await bob!.presence(`${room}/Alice`, (p) => p.type === 'available', "Alice's presence on re-entry", bm3);
      assert.deepEqual(later.ext.map((e) => [e.ns, e.name, e.text]), [['urn:example:game', 'avatar', 'phoenix']]);
    } finally {
      await quitAll([alice!, bob!]);
    }
  });
});

describe('XEP-0045 persistent rooms across a restart, with slixmpp', () => {
  test('room, affiliations, ban, subject and history survive a restart', async () => {
    requireSlixmpp();
    let srv = await startTestServer();
    const dataDir = srv.dataDir;
    const room = `keep@${MUC}`;
    try {
      for (const u of USERS) await srv.createUser(u, `${u}-pw`);
      let [alice, bob, dave] = await clients(srv.port, 'alice', 'bob', 'dave');
      let bobOccupantId: string | null;
      try {
        await createRoom(alice!, room, 'Alice', { 'muc#roomconfig_persistentroom': true, 'muc#roomconfig_roomname': 'Kept Room' });
        await alice!.ok('set_affiliation', { room, jid: 'bob@localhost', affiliation: 'member' });
        await alice!.ok('set_affiliation', { room, jid: 'carol@localhost', affiliation: 'admin' });
        await alice!.ok('set_affiliation', { room, jid: 'dave@localhost', affiliation: 'outcast', reason: 'spam' });
        await dave!.fails('join', { room, nick: 'Dave' }, 'forbidden');
        const jb = await bob!.join(room, 'Bob');
        bobOccupantId = jb.occupant_id;
        await alice!.ok('subject', { room, subject: 'Kept subject' });
        for (const body of ['before the restart 1', 'before the restart 2']) {
          const m = bob!.mark();
          await alice!.ok('say', { room, body });
          await bob!.message((x) => x.body === body, body, m);
        }
        await bob!.message((x) => x.subject === 'Kept subject', 'the subject');
      } finally {
        await quitAll([alice!, bob!, dave!]);
      }
      await srv.stop(false);
      srv = await startTestServer({}, dataDir);

      [alice, bob, dave] = await clients(srv.port, 'alice', 'bob', 'dave');
      try {
        const items = (await alice!.ok('disco_items', { jid: MUC })).items as Array<{ jid: string; name: string }>;
        assert.deepEqual(items.filter((i) => i.jid === room), [{ jid: room, name: 'Kept Room' }], `the room is listed after the restart: ${JSON.stringify(items)}`);
        const info = await alice!.ok('disco_info', { jid: room });
        assert.ok((info.features as string[]).includes('muc_persistent'));
        const lists: Record<string, unknown> = {};
        for (const a of ['owner', 'admin', 'member', 'outcast']) lists[a] = (await alice!.ok('affiliations', { room, affiliation: a })).jids;
        assert.deepEqual(lists, { owner: ['alice@localhost'], admin: ['carol@localhost'], member: ['bob@localhost'], outcast: ['dave@localhost'] });
        await dave!.fails('join', { room, nick: 'Dave' }, 'forbidden');
        const jb = await bob!.join(room, 'Bob', { maxstanzas: 10 });
        assert.equal(jb.item.affiliation, 'member');
        assert.deepEqual(jb.codes, [110], 'an existing room: no 201');
        assert.deepEqual(jb.history.map((h) => [h.frm, h.body]), [
          [`${room}/Alice`, 'before the restart 1'],
          [`${room}/Alice`, 'before the restart 2'],
        ]);
        for (const h of jb.history) assert.equal(h.delay_from, room);
        assert.equal(jb.subject.text, 'Kept subject');
        assert.equal(jb.occupant_id, bobOccupantId, 'the occupant-id is stable across the restart (XEP-0421 §4)');
      } finally {
        await quitAll([alice!, bob!, dave!]);
      }
    } finally {
      await srv.stop(false);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
