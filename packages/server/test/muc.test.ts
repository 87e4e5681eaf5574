// Multi-user chat (XEP-0045) with @xmpp/client (xmpp.js): the service, rooms, occupants,
// roles and affiliations, history, invitations, XEP-0410 self-ping, XEP-0421 occupant ids,
// persistence across a restart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { xmppjs, xml, type Xjs } from './helpers/xmppjs.ts';
import type { Element } from '@xmpp/client';

const MUC = 'http://jabber.org/protocol/muc';
const USER = `${MUC}#user`;
const ADMIN = `${MUC}#admin`;
const OWNER = `${MUC}#owner`;
const DATA = 'jabber:x:data';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const OCC_ID = 'urn:xmpp:occupant-id:0';
const SERVICE = 'conference.localhost';

const codes = (s: Element): number[] =>
  (s.getChild('x', USER)?.getChildren('status') ?? []).map((c) => Number(c.attrs.code)).sort((a, b) => a - b);
const item = (s: Element) => s.getChild('x', USER)?.getChild('item')?.attrs ?? {};
const condition = (s: Element): string | undefined =>
  s.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text')?.name;
const presenceFrom = (from: string, type?: string) => (s: Element) => s.is('presence') && s.attrs.from === from && s.attrs.type === type;
const bodyIs = (body: string) => (s: Element) => s.is('message') && s.getChildText('body') === body;

/** Sends an iq and returns the error condition it failed with. */
async function iqError(c: Xjs, el: Element): Promise<string> {
  try {
    await c.iq(el);
  } catch (err) {
    const e = err as { condition?: string; element?: Element };
    return e.condition ?? (e.element ? condition(e.element) ?? 'unknown' : String(err));
  }
  assert.fail('the iq succeeded');
}

/** Joins `room` as `nick`; resolves with the self-presence (status 110), after the subject arrived. */
async function join(c: Xjs, room: string, nick: string, extra: Element[] = [], x: Element = xml('x', { xmlns: MUC })): Promise<Element> {
  const jid = `${room}@${SERVICE}/${nick}`;
  await c.send(xml('presence', { to: jid }, x, ...extra));
  const self = await c.next((s) => s.is('presence') && s.attrs.from === jid && (codes(s).includes(110) || s.attrs.type === 'error'), 5000, `self-presence from ${jid}`);
  if (self.attrs.type === 'error') return self;
  await c.next((s) => s.is('message') && s.getChild('subject') !== undefined && s.attrs.from?.startsWith(`${room}@`) === true, 5000, 'subject');
  return self;
}

/** Creates an instant room (XEP-0045 §10.1.2) owned by `c`. */
async function createRoom(c: Xjs, room: string, nick: string, config: Record<string, string | string[]> = {}): Promise<void> {
  const self = await join(c, room, nick);
  assert.deepEqual(codes(self), [110, 201]);
  await configure(c, room, config);
}

async function configure(c: Xjs, room: string, config: Record<string, string | string[]>): Promise<void> {
  const fields = Object.entries(config).map(([v, val]) => xml('field', { var: v }, (Array.isArray(val) ? val : [val]).map((x) => xml('value', {}, x))));
  await c.iq(
    xml('iq', { type: 'set', to: `${room}@${SERVICE}` }, xml('query', { xmlns: OWNER }, xml('x', { xmlns: DATA, type: 'submit' }, fields))),
  );
}

const admin = (c: Xjs, room: string, items: Element[]) => c.iq(xml('iq', { type: 'set', to: `${room}@${SERVICE}` }, xml('query', { xmlns: ADMIN }, items)));

describe('XEP-0045 multi-user chat with xmpp.js', () => {
  let srv: TestServer;
  const clients: Xjs[] = [];
  const login = async (user: string, resource = 'r') => {
    const c = await xmppjs(srv.port, user, `${user}-pw`, resource);
    clients.push(c);
    // Available, so that messages from rooms to the bare JID (invitations) are delivered (RFC 6121 §8.5.2).
    await c.send(xml('presence'));
    await c.next((s) => s.is('presence') && s.attrs.from === `${user}@localhost/${resource}`);
    return c;
  };
  before(async () => {
    srv = await startTestServer();
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) await srv.createUser(u, `${u}-pw`);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await srv.stop();
  });

  test('the service is discoverable; a new room is locked until configured, then listed; a temporary room goes when empty', async () => {
    const a = await login('alice');
    const b = await login('bob');
    const items = await a.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: DISCO_ITEMS })));
    assert.ok(items.getChild('query')!.getChildren('item').some((i) => i.attrs.jid === SERVICE));
    const info = await a.iq(xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: DISCO_INFO })));
    assert.equal(info.getChild('query')!.getChild('identity')!.attrs.category, 'conference');
    assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === MUC));

    const self = await join(a, 'lobby', 'Alice');
    assert.deepEqual(codes(self), [110, 201]);
    assert.deepEqual(item(self), { affiliation: 'owner', role: 'moderator', jid: 'alice@localhost/r' });
    // §7.2.11: locked.
    const denied = await join(b, 'lobby', 'Bob');
    assert.equal(denied.attrs.type, 'error');
    assert.equal(condition(denied), 'item-not-found');
    const listed = async () =>
      (await a.iq(xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: DISCO_ITEMS })))).getChild('query')!.getChildren('item').map((i) => i.attrs.jid);
    assert.deepEqual(await listed(), []);
    // §10.1.3: the owner asks for the form and submits it (a reserved room).
    const form = await a.iq(xml('iq', { type: 'get', to: `lobby@${SERVICE}` }, xml('query', { xmlns: OWNER })));
    const vars = form.getChild('query')!.getChild('x', DATA)!.getChildren('field').map((f) => f.attrs.var);
    for (const v of ['muc#roomconfig_roomname', 'muc#roomconfig_roomdesc', 'muc#roomconfig_persistentroom', 'muc#roomconfig_publicroom', 'muc#roomconfig_moderatedroom', 'muc#roomconfig_membersonly', 'muc#roomconfig_passwordprotectedroom', 'muc#roomconfig_roomsecret', 'muc#roomconfig_whois', 'muc#roomconfig_maxusers', 'muc#roomconfig_allowpm', 'muc#roomconfig_allowinvites', 'muc#roomconfig_changesubject', 'muc#roomconfig_enablelogging', 'muc#roomconfig_presencebroadcast', 'muc#roomconfig_getmemberlist', 'muc#roomconfig_lang', 'muc#roomconfig_pubsub', 'muc#roomconfig_roomadmins', 'muc#roomconfig_roomowners', 'muc#maxhistoryfetch']) {
      assert.ok(vars.includes(v), `the form has ${v}`);
    }
    await configure(a, 'lobby', { FORM_TYPE: `${MUC}#roomconfig`, 'muc#roomconfig_roomname': 'The Lobby' });
    assert.deepEqual(await listed(), [`lobby@${SERVICE}`]);
    assert.deepEqual(codes(await join(b, 'lobby', 'Bob')), [110]);
    // A non-owner may not configure.
    assert.equal(await iqError(b, xml('iq', { type: 'get', to: `lobby@${SERVICE}` }, xml('query', { xmlns: OWNER }))), 'forbidden');
    // Temporary: gone when the last occupant leaves.
    await a.send(xml('presence', { to: `lobby@${SERVICE}/Alice`, type: 'unavailable' }));
    await b.next(presenceFrom(`lobby@${SERVICE}/Alice`, 'unavailable'));
    await b.send(xml('presence', { to: `lobby@${SERVICE}/Bob`, type: 'unavailable' }));
    const bye = await b.next(presenceFrom(`lobby@${SERVICE}/Bob`, 'unavailable'));
    assert.deepEqual(codes(bye), [110]);
    assert.deepEqual(await listed(), []);
    assert.equal(await iqError(a, xml('iq', { type: 'get', to: `lobby@${SERVICE}` }, xml('query', { xmlns: DISCO_INFO }))), 'item-not-found');
    // Cancelling the initial configuration destroys the room (§10.1.3).
    await join(a, 'cancelled', 'Alice');
    await a.iq(xml('iq', { type: 'set', to: `cancelled@${SERVICE}` }, xml('query', { xmlns: OWNER }, xml('x', { xmlns: DATA, type: 'cancel' }))));
    assert.equal(await iqError(a, xml('iq', { type: 'get', to: `cancelled@${SERVICE}` }, xml('query', { xmlns: DISCO_INFO }))), 'item-not-found');
  });

  test('three occupants: order of events, groupchat with stanza-id and occupant-id, private messages, semi-anonymity', async () => {
    const a = await login('alice', 'three');
    const b = await login('bob', 'three');
    const c = await login('carol', 'three');
    await createRoom(a, 'trio', 'Alice');
    await join(b, 'trio', 'Bob');
    // Carol gets Alice and Bob first, then herself (§7.1): check the order in what she receives.
    await c.send(xml('presence', { to: `trio@${SERVICE}/Carol` }, xml('x', { xmlns: MUC })));
    await c.next((s) => s.is('message') && s.getChild('subject') !== undefined);
    const order = c.stanzas.splice(0).filter((s) => s.is('presence')).map((s) => s.attrs.from);
    assert.deepEqual(order.slice(-1), [`trio@${SERVICE}/Carol`]);
    assert.deepEqual(new Set(order.slice(0, 2)), new Set([`trio@${SERVICE}/Alice`, `trio@${SERVICE}/Bob`]));
    // Semi-anonymous (default): Bob (participant) does not see Carol's JID, Alice (moderator) does.
    const seenByBob = await b.next(presenceFrom(`trio@${SERVICE}/Carol`));
    assert.equal(item(seenByBob).jid, undefined);
    const seenByAlice = await a.next(presenceFrom(`trio@${SERVICE}/Carol`));
    assert.equal(item(seenByAlice).jid, 'carol@localhost/three');

    await c.send(xml('message', { to: `trio@${SERVICE}`, type: 'groupchat', id: 'carol-1' }, xml('body', {}, 'hi all'), xml('occupant-id', { xmlns: OCC_ID, id: 'forged' })));
    const got = await Promise.all([a, b, c].map((x) => x.next(bodyIs('hi all'))));
    for (const m of got) {
      assert.equal(m.attrs.from, `trio@${SERVICE}/Carol`);
      assert.equal(m.attrs.type, 'groupchat');
      assert.equal(m.attrs.id, 'carol-1', 'the sender id is reflected (§7.4)');
      assert.equal(m.getChildren('occupant-id').length, 1, 'one occupant-id, the forged one removed (XEP-0421 §4)');
      assert.equal(m.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.by, `trio@${SERVICE}`);
    }
    assert.notEqual(got[0]!.getChild('occupant-id')!.attrs.id, 'forged');
    assert.equal(got[0]!.getChild('occupant-id')!.attrs.id, seenByBob.getChild('occupant-id', OCC_ID)!.attrs.id, 'presence and messages carry the same occupant id');

    // Private message (§7.5), marked with the muc#user <x/>.
    await a.send(xml('message', { to: `trio@${SERVICE}/Bob`, type: 'chat' }, xml('body', {}, 'psst')));
    const pm = await b.next(bodyIs('psst'));
    assert.equal(pm.attrs.from, `trio@${SERVICE}/Alice`);
    assert.ok(pm.getChild('x', USER));
    await a.send(xml('message', { to: `trio@${SERVICE}/Nobody`, type: 'chat', id: 'pm2' }, xml('body', {}, 'lost')));
    assert.equal(condition(await a.next((s) => s.is('message') && s.attrs.type === 'error' && s.attrs.id === 'pm2')), 'item-not-found');
    // A non-occupant may not speak (§7.4) nor send private messages.
    const d = await login('dave', 'three');
    await d.send(xml('message', { to: `trio@${SERVICE}`, type: 'groupchat', id: 'd1' }, xml('body', {}, 'x')));
    assert.equal(condition(await d.next((s) => s.attrs.id === 'd1' && s.attrs.type === 'error')), 'not-acceptable');
    await d.send(xml('message', { to: `trio@${SERVICE}/Bob`, type: 'chat', id: 'd2' }, xml('body', {}, 'x')));
    assert.equal(condition(await d.next((s) => s.attrs.id === 'd2' && s.attrs.type === 'error')), 'not-acceptable');
    // Non-anonymous rooms: 100 on entering, and a 104 + 172 configuration notice.
    await configure(a, 'trio', { 'muc#roomconfig_whois': 'anyone' });
    const notice = await b.next((s) => s.is('message') && s.attrs.from === `trio@${SERVICE}` && codes(s).includes(104));
    assert.deepEqual(codes(notice), [104, 172]);
    const self = await join(d, 'trio', 'Dave');
    assert.deepEqual(codes(self), [100, 110]);
    assert.equal(item(await b.next(presenceFrom(`trio@${SERVICE}/Dave`))).jid, 'dave@localhost/three');
    // allowpm = moderators: Bob may no longer whisper.
    await configure(a, 'trio', { 'muc#roomconfig_allowpm': 'moderators' });
    await b.send(xml('message', { to: `trio@${SERVICE}/Carol`, type: 'chat', id: 'b-pm' }, xml('body', {}, 'x')));
    assert.equal(condition(await b.next((s) => s.attrs.id === 'b-pm' && s.attrs.type === 'error')), 'forbidden');
  });

  test('one nickname from two sessions; nick change (303), conflict, and a nick the service normalises (210)', async () => {
    const a = await login('alice', 'ns');
    const b1 = await login('bob', 'one');
    const b2 = await login('bob', 'two');
    const c = await login('carol', 'ns');
    await createRoom(a, 'nicks', 'Alice');
    await join(b1, 'nicks', 'Bob');
    await a.next(presenceFrom(`nicks@${SERVICE}/Bob`));
    await join(b2, 'nicks', 'Bob');
    await a.send(xml('message', { to: `nicks@${SERVICE}`, type: 'groupchat' }, xml('body', {}, 'to both')));
    await Promise.all([b1.next(bodyIs('to both')), b2.next(bodyIs('to both'))]);
    await b2.send(xml('message', { to: `nicks@${SERVICE}`, type: 'groupchat' }, xml('body', {}, 'from two')));
    assert.equal((await b1.next(bodyIs('from two'))).attrs.from, `nicks@${SERVICE}/Bob`);
    // One session leaves: Bob stays in the room.
    await b2.send(xml('presence', { to: `nicks@${SERVICE}/Bob`, type: 'unavailable' }));
    assert.deepEqual(codes(await b2.next(presenceFrom(`nicks@${SERVICE}/Bob`, 'unavailable'))), [110]);
    await a.send(xml('message', { to: `nicks@${SERVICE}`, type: 'groupchat' }, xml('body', {}, 'still here?')));
    await b1.next(bodyIs('still here?'));
    assert.equal(a.stanzas.filter(presenceFrom(`nicks@${SERVICE}/Bob`, 'unavailable')).length, 0);
    // Conflict (§7.2.9).
    const taken = await join(c, 'nicks', 'bob');
    assert.equal(condition(taken), 'conflict', 'nicknames compare case-insensitively (RFC 8266)');
    await join(c, 'nicks', 'Carol');
    // Change (§7.6).
    await c.send(xml('presence', { to: `nicks@${SERVICE}/Alice` }));
    assert.equal(condition(await c.next((s) => s.is('presence') && s.attrs.type === 'error')), 'conflict');
    await c.send(xml('presence', { to: `nicks@${SERVICE}/Caroline` }));
    const gone = await a.next(presenceFrom(`nicks@${SERVICE}/Carol`, 'unavailable'));
    assert.deepEqual(codes(gone), [303]);
    assert.equal(item(gone).nick, 'Caroline');
    await a.next(presenceFrom(`nicks@${SERVICE}/Caroline`));
    const selfGone = await c.next(presenceFrom(`nicks@${SERVICE}/Carol`, 'unavailable'));
    assert.deepEqual(codes(selfGone), [110, 303]);
    assert.deepEqual(codes(await c.next(presenceFrom(`nicks@${SERVICE}/Caroline`))), [110]);
    // A fullwidth nickname is mapped (RFC 8266 §2.2): the room says so with 210.
    const d = await login('dave', 'ns');
    await d.send(xml('presence', { to: `nicks@${SERVICE}/Ｄave` }, xml('x', { xmlns: MUC })));
    const self = await d.next((s) => s.is('presence') && codes(s).includes(110));
    assert.equal(self.attrs.from, `nicks@${SERVICE}/Dave`);
    assert.deepEqual(codes(self), [110, 210]);
  });

  test('discussion history on entering: maxstanzas, maxchars, seconds, since, with delay stamps, then the subject', async () => {
    const a = await login('alice', 'hist');
    await createRoom(a, 'history', 'Alice');
    await a.send(xml('message', { to: `history@${SERVICE}`, type: 'groupchat' }, xml('subject', {}, 'Today: history')));
    await a.next((s) => s.is('message') && s.getChildText('subject') === 'Today: history');
    for (let i = 1; i <= 5; i++) {
      await a.send(xml('message', { to: `history@${SERVICE}`, type: 'groupchat' }, xml('body', {}, `m${i}`)));
      await a.next(bodyIs(`m${i}`));
    }
    const enter = async (who: string, history: Record<string, string> | null) => {
      const c = await login(who, `h${Math.random()}`);
      await c.send(xml('presence', { to: `history@${SERVICE}/${who}` }, xml('x', { xmlns: MUC }, history ? xml('history', history) : null)));
      const subject = await c.next((s) => s.is('message') && s.getChild('subject') !== undefined);
      const got = c.stanzas.splice(0).filter((s) => s.is('message') && s.getChild('body'));
      await c.send(xml('presence', { to: `history@${SERVICE}/${who}`, type: 'unavailable' }));
      return { bodies: got.map((m) => m.getChildText('body')), got, subject };
    };
    const all = await enter('bob', null);
    assert.deepEqual(all.bodies, ['m1', 'm2', 'm3', 'm4', 'm5']);
    for (const m of all.got) {
      assert.equal(m.attrs.from, `history@${SERVICE}/Alice`);
      const delay = m.getChild('delay', 'urn:xmpp:delay')!;
      assert.equal(delay.attrs.from, `history@${SERVICE}`);
      assert.ok(Math.abs(Date.parse(delay.attrs.stamp!) - Date.now()) < 60_000);
    }
    assert.equal(all.subject.getChildText('subject'), 'Today: history');
    assert.equal(all.subject.attrs.from, `history@${SERVICE}/Alice`);
    assert.deepEqual((await enter('carol', { maxstanzas: '2' })).bodies, ['m4', 'm5']);
    assert.deepEqual((await enter('dave', { maxchars: '0' })).bodies, []);
    assert.deepEqual((await enter('erin', { seconds: '3600' })).bodies.length, 5);
    assert.deepEqual((await enter('bob', { since: new Date(Date.now() + 60_000).toISOString() })).bodies, []);
    // maxchars counts whole stanzas (as the room stores them, shorter than what arrives with 'to' and delay).
    const oneStanza = all.got[4]!.toString().length;
    const some = (await enter('carol', { maxchars: String(oneStanza * 2) })).bodies;
    assert.ok(some.length >= 2 && some.length < 5, `maxchars gives the last few messages: ${some.join()}`);
    assert.deepEqual(some, ['m1', 'm2', 'm3', 'm4', 'm5'].slice(5 - some.length));
  });

  test('moderation: kick (307), ban (301), voice in a moderated room, voice request, permissions and the last owner', async () => {
    const a = await login('alice', 'mod');
    const b = await login('bob', 'mod');
    const c = await login('carol', 'mod');
    await createRoom(a, 'modroom', 'Alice', { 'muc#roomconfig_moderatedroom': '1' });
    const bSelf = await join(b, 'modroom', 'Bob');
    assert.equal(item(bSelf).role, 'visitor');
    await b.send(xml('message', { to: `modroom@${SERVICE}`, type: 'groupchat', id: 'v1' }, xml('body', {}, 'can I?')));
    assert.equal(condition(await b.next((s) => s.attrs.id === 'v1' && s.attrs.type === 'error')), 'forbidden');
    // Voice request (§7.13) reaches the moderator; approving it (§8.6) gives voice.
    await b.send(
      xml('message', { to: `modroom@${SERVICE}` }, xml('x', { xmlns: DATA, type: 'submit' },
        xml('field', { var: 'FORM_TYPE' }, xml('value', {}, `${MUC}#request`)),
        xml('field', { var: 'muc#role' }, xml('value', {}, 'participant')))),
    );
    const req = await a.next((s) => s.is('message') && s.getChild('x', DATA) !== undefined);
    const fields = Object.fromEntries(req.getChild('x', DATA)!.getChildren('field').map((f) => [f.attrs.var, f.getChildText('value')]));
    assert.equal(fields['muc#roomnick'], 'Bob');
    await a.send(
      xml('message', { to: `modroom@${SERVICE}` }, xml('x', { xmlns: DATA, type: 'submit' },
        xml('field', { var: 'FORM_TYPE' }, xml('value', {}, `${MUC}#request`)),
        xml('field', { var: 'muc#role' }, xml('value', {}, 'participant')),
        xml('field', { var: 'muc#roomnick' }, xml('value', {}, 'Bob')),
        xml('field', { var: 'muc#request_allow' }, xml('value', {}, 'true')))),
    );
    assert.equal(item(await b.next((s) => presenceFrom(`modroom@${SERVICE}/Bob`)(s) && item(s).role === 'participant')).role, 'participant');
    await b.send(xml('message', { to: `modroom@${SERVICE}`, type: 'groupchat' }, xml('body', {}, 'now I can')));
    await a.next(bodyIs('now I can'));
    // Revoke voice (§8.4), by a moderator, with a reason.
    await admin(a, 'modroom', [xml('item', { nick: 'Bob', role: 'visitor' }, xml('reason', {}, 'quiet'))]);
    const devoiced = await b.next((s) => presenceFrom(`modroom@${SERVICE}/Bob`)(s) && item(s).role === 'visitor');
    assert.equal(devoiced.getChild('x', USER)!.getChild('item')!.getChildText('reason'), 'quiet');
    // Permissions: a participant may not kick; nobody kicks an owner; role and affiliation never together.
    await join(c, 'modroom', 'Carol');
    await admin(a, 'modroom', [xml('item', { nick: 'Carol', role: 'participant' })]);
    assert.equal(await iqError(c, xml('iq', { type: 'set', to: `modroom@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { nick: 'Bob', role: 'none' })))), 'forbidden');
    await admin(a, 'modroom', [xml('item', { jid: 'carol@localhost', affiliation: 'admin' })]);
    assert.equal(item(await c.next((s) => presenceFrom(`modroom@${SERVICE}/Carol`)(s) && item(s).affiliation === 'admin')).role, 'moderator');
    assert.equal(await iqError(c, xml('iq', { type: 'set', to: `modroom@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { nick: 'Alice', role: 'none' })))), 'not-allowed');
    assert.equal(await iqError(c, xml('iq', { type: 'set', to: `modroom@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { jid: 'alice@localhost', affiliation: 'member' })))), 'not-allowed');
    assert.equal(await iqError(a, xml('iq', { type: 'set', to: `modroom@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { nick: 'Bob', jid: 'bob@localhost', role: 'none', affiliation: 'outcast' })))), 'bad-request');
    assert.equal(await iqError(a, xml('iq', { type: 'set', to: `modroom@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { jid: 'alice@localhost', affiliation: 'admin' })))), 'conflict');
    // Kick (§8.2): everyone sees 307, the kicked one also 110; actor and reason given.
    await admin(c, 'modroom', [xml('item', { nick: 'Bob', role: 'none' }, xml('reason', {}, 'bye'))]);
    const kicked = await b.next(presenceFrom(`modroom@${SERVICE}/Bob`, 'unavailable'));
    assert.deepEqual(codes(kicked), [110, 307]);
    assert.equal(kicked.getChild('x', USER)!.getChild('item')!.getChild('actor')!.attrs.nick, 'Carol');
    assert.deepEqual(codes(await a.next(presenceFrom(`modroom@${SERVICE}/Bob`, 'unavailable'))), [307]);
    // Ban (§9.1): 301, and the banned user may not come back.
    await join(b, 'modroom', 'Bob');
    await admin(a, 'modroom', [xml('item', { jid: 'bob@localhost', affiliation: 'outcast' }, xml('reason', {}, 'spam'))]);
    const banned = await b.next(presenceFrom(`modroom@${SERVICE}/Bob`, 'unavailable'));
    assert.deepEqual(codes(banned), [110, 301]);
    assert.equal(item(banned).affiliation, 'outcast');
    assert.equal(condition(await join(b, 'modroom', 'Bob')), 'forbidden');
    const outcasts = await a.iq(xml('iq', { type: 'get', to: `modroom@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { affiliation: 'outcast' }))));
    assert.deepEqual(outcasts.getChild('query')!.getChildren('item').map((i) => [i.attrs.jid, i.getChildText('reason')]), [['bob@localhost', 'spam']]);
    // The moderator list (§8.5).
    const mods = await a.iq(xml('iq', { type: 'get', to: `modroom@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { role: 'moderator' }))));
    assert.deepEqual(mods.getChild('query')!.getChildren('item').map((i) => i.attrs.nick).sort(), ['Alice', 'Carol']);
  });

  test('password and members-only rooms, max users, invitations (mediated and XEP-0249 direct), declines', async () => {
    const a = await login('alice', 'pw');
    const b = await login('bob', 'pw');
    const c = await login('carol', 'pw');
    await createRoom(a, 'secret', 'Alice', { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'sesame', 'muc#roomconfig_maxusers': '2' });
    assert.equal(condition(await join(b, 'secret', 'Bob')), 'not-authorized');
    assert.equal(condition(await join(b, 'secret', 'Bob', [], xml('x', { xmlns: MUC }, xml('password', {}, 'wrong')))), 'not-authorized');
    assert.deepEqual(codes(await join(b, 'secret', 'Bob', [], xml('x', { xmlns: MUC }, xml('password', {}, 'sesame')))), [110]);
    assert.equal(condition(await join(c, 'secret', 'Carol', [], xml('x', { xmlns: MUC }, xml('password', {}, 'sesame')))), 'service-unavailable', 'full (§7.2.10)');

    await createRoom(a, 'club', 'Alice', { 'muc#roomconfig_membersonly': '1' });
    assert.equal(condition(await join(b, 'club', 'Bob')), 'registration-required');
    // A mediated invitation from an owner makes Bob a member (§7.8.2).
    await a.send(xml('message', { to: `club@${SERVICE}` }, xml('x', { xmlns: USER }, xml('invite', { to: 'bob@localhost' }, xml('reason', {}, 'join us')))));
    const inv = await b.next((s) => s.is('message') && s.getChild('x', USER)?.getChild('invite') !== undefined);
    assert.equal(inv.attrs.from, `club@${SERVICE}`);
    assert.equal(inv.getChild('x', USER)!.getChild('invite')!.attrs.from, 'alice@localhost');
    assert.equal(inv.getChild('x', USER)!.getChild('invite')!.getChildText('reason'), 'join us');
    assert.deepEqual(codes(await join(b, 'club', 'Bob')), [110]);
    // Carol declines hers.
    await a.send(xml('message', { to: `club@${SERVICE}` }, xml('x', { xmlns: USER }, xml('invite', { to: 'carol@localhost' }))));
    await c.next((s) => s.is('message') && s.getChild('x', USER)?.getChild('invite') !== undefined);
    await c.send(xml('message', { to: `club@${SERVICE}` }, xml('x', { xmlns: USER }, xml('decline', { to: 'alice@localhost' }, xml('reason', {}, 'busy')))));
    const decline = await a.next((s) => s.is('message') && s.getChild('x', USER)?.getChild('decline') !== undefined);
    assert.equal(decline.getChild('x', USER)!.getChild('decline')!.attrs.from, 'carol@localhost');
    // Members-only without invitation rights: Bob may not invite (allowinvites off).
    await b.send(xml('message', { to: `club@${SERVICE}`, id: 'bi' }, xml('x', { xmlns: USER }, xml('invite', { to: 'dave@localhost' }))));
    assert.equal(condition(await b.next((s) => s.attrs.id === 'bi' && s.attrs.type === 'error')), 'forbidden');
    // Losing membership in a members-only room removes Bob (321).
    await admin(a, 'club', [xml('item', { jid: 'bob@localhost', affiliation: 'none' })]);
    assert.deepEqual(codes(await b.next(presenceFrom(`club@${SERVICE}/Bob`, 'unavailable'))), [110, 321]);
    // XEP-0249: a direct invitation goes from user to user untouched.
    await a.send(xml('message', { to: 'carol@localhost/pw' }, xml('x', { xmlns: 'jabber:x:conference', jid: `club@${SERVICE}`, reason: 'come' })));
    const direct = await c.next((s) => s.is('message') && s.getChild('x', 'jabber:x:conference') !== undefined);
    assert.equal(direct.getChild('x', 'jabber:x:conference')!.attrs.jid, `club@${SERVICE}`);
    assert.equal(direct.attrs.from, 'alice@localhost/pw');
    // An open room that becomes members-only removes non-members (322).
    await createRoom(a, 'closing', 'Alice');
    await join(c, 'closing', 'Carol');
    await configure(a, 'closing', { 'muc#roomconfig_membersonly': '1' });
    assert.deepEqual(codes(await c.next(presenceFrom(`closing@${SERVICE}/Carol`, 'unavailable'))), [110, 322]);
  });

  test('XEP-0410 self-ping, iq to another occupant, a bouncing occupant removed (333), destruction with an alternate venue', async () => {
    const a = await login('alice', 'ping');
    const b = await login('bob', 'ping');
    b.x.iqCallee.get('urn:xmpp:ping', 'ping', () => ({}));
    await createRoom(a, 'pings', 'Alice');
    await join(b, 'pings', 'Bob');
    await a.iq(xml('iq', { type: 'get', to: `pings@${SERVICE}/Alice` }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    const c = await login('carol', 'ping');
    assert.equal(await iqError(c, xml('iq', { type: 'get', to: `pings@${SERVICE}/Alice` }, xml('ping', { xmlns: 'urn:xmpp:ping' }))), 'not-acceptable');
    // Forwarded to Bob's client, which answers; the answer comes back from Bob's occupant JID.
    const res = await a.iq(xml('iq', { type: 'get', to: `pings@${SERVICE}/Bob` }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(res.attrs.from, `pings@${SERVICE}/Bob`);
    assert.equal(await iqError(a, xml('iq', { type: 'get', to: `pings@${SERVICE}/Nobody` }, xml('ping', { xmlns: 'urn:xmpp:ping' }))), 'item-not-found');
    // §18.1.2: Bob's client bounces a message with a delivery error: Bob is removed, with 333.
    await b.send(xml('message', { to: `pings@${SERVICE}`, type: 'error' }, xml('error', { type: 'cancel' }, xml('recipient-unavailable', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }))));
    assert.deepEqual(codes(await a.next(presenceFrom(`pings@${SERVICE}/Bob`, 'unavailable'))), [333]);
    assert.deepEqual(codes(await b.next(presenceFrom(`pings@${SERVICE}/Bob`, 'unavailable'))), [110, 333]);
    // Destruction (§10.9).
    await join(b, 'pings', 'Bob');
    assert.equal(await iqError(b, xml('iq', { type: 'set', to: `pings@${SERVICE}` }, xml('query', { xmlns: OWNER }, xml('destroy')))), 'forbidden');
    await a.iq(xml('iq', { type: 'set', to: `pings@${SERVICE}` }, xml('query', { xmlns: OWNER }, xml('destroy', { jid: `elsewhere@${SERVICE}` }, xml('reason', {}, 'moved')))));
    const gone = await b.next(presenceFrom(`pings@${SERVICE}/Bob`, 'unavailable'));
    const d = gone.getChild('x', USER)!.getChild('destroy')!;
    assert.equal(d.attrs.jid, `elsewhere@${SERVICE}`);
    assert.equal(d.getChildText('reason'), 'moved');
    assert.equal(await iqError(b, xml('iq', { type: 'get', to: `pings@${SERVICE}` }, xml('query', { xmlns: DISCO_INFO }))), 'item-not-found');
  });

  test('a presence extension is relayed, kept with the occupant for later joiners, and updated', async () => {
    const a = await login('alice', 'ext');
    const b = await login('bob', 'ext');
    await createRoom(a, 'game', 'Alice');
    await a.send(xml('presence', { to: `game@${SERVICE}/Alice` }, xml('avatar', { xmlns: 'urn:example:game' }, 'dragon'), xml('show', {}, 'away')));
    await a.next(presenceFrom(`game@${SERVICE}/Alice`));
    await b.send(xml('presence', { to: `game@${SERVICE}/Bob` }, xml('x', { xmlns: MUC })));
    const seen = await b.next(presenceFrom(`game@${SERVICE}/Alice`));
    assert.equal(seen.getChildText('avatar', 'urn:example:game'), 'dragon');
    assert.equal(seen.getChildText('show'), 'away');
    assert.equal(seen.getChildren('x', USER).length, 1);
    await a.send(xml('presence', { to: `game@${SERVICE}/Alice` }, xml('avatar', { xmlns: 'urn:example:game' }, 'phoenix')));
    assert.equal((await b.next(presenceFrom(`game@${SERVICE}/Alice`))).getChildText('avatar', 'urn:example:game'), 'phoenix');
  });

  test('bad input gets the specified errors and changes nothing', async () => {
    const a = await login('alice', 'bad');
    await createRoom(a, 'strict', 'Alice');
    const reply = async (el: Element) => {
      await a.send(el);
      return a.next((s) => s.attrs.id === el.attrs.id && s.attrs.type !== undefined && s.attrs.type !== 'get' && s.attrs.type !== 'set');
    };
    // RFC 6120 §8.2.3: an iq get without payload, or with two.
    assert.equal(condition(await reply(xml('iq', { type: 'get', to: `strict@${SERVICE}`, id: 'nopayload' }))), 'bad-request');
    assert.equal(condition(await reply(xml('iq', { type: 'get', to: `strict@${SERVICE}`, id: 'two' }, xml('query', { xmlns: DISCO_INFO }), xml('query', { xmlns: DISCO_ITEMS })))), 'bad-request');
    const submit = (...fields: Element[]) => xml('iq', { type: 'set', to: `strict@${SERVICE}`, id: `f${Math.random()}` }, xml('query', { xmlns: OWNER }, xml('x', { xmlns: DATA, type: 'submit' }, ...fields)));
    const field = (v: string, value: string) => xml('field', { var: v }, xml('value', {}, value));
    assert.equal(condition(await reply(submit(field('muc#roomconfig_persistentroom', 'perhaps')))), 'bad-request');
    assert.equal(condition(await reply(submit(field('muc#roomconfig_maxusers', '100000')))), 'not-acceptable');
    assert.equal(condition(await reply(submit(field('muc#roomconfig_passwordprotectedroom', '1')))), 'not-acceptable', 'a password room needs a password');
    assert.equal(condition(await reply(submit(field('muc#roomconfig_whois', 'everybody')))), 'bad-request');
    assert.equal(condition(await reply(submit(field('FORM_TYPE', 'urn:other')))), 'bad-request');
    assert.equal(condition(await reply(xml('iq', { type: 'set', to: `strict@${SERVICE}`, id: 'noform' }, xml('query', { xmlns: OWNER })))), 'bad-request');
    assert.equal(condition(await reply(xml('iq', { type: 'set', to: `strict@${SERVICE}`, id: 'roleless' }, xml('query', { xmlns: ADMIN }, xml('item', { nick: 'Alice' }))))), 'bad-request');
    assert.equal(condition(await reply(xml('iq', { type: 'set', to: `strict@${SERVICE}`, id: 'badjid' }, xml('query', { xmlns: ADMIN }, xml('item', { jid: '@@', affiliation: 'member' }))))), 'bad-request');
    // A presence to the room without a nickname (§7.2.1).
    await a.send(xml('presence', { to: `strict@${SERVICE}`, id: 'nonick' }, xml('x', { xmlns: MUC })));
    assert.equal(condition(await a.next((s) => s.attrs.id === 'nonick')), 'jid-malformed');
    // Nothing changed: the room is as configured, and still works.
    const info = await a.iq(xml('iq', { type: 'get', to: `strict@${SERVICE}` }, xml('query', { xmlns: DISCO_INFO })));
    const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features.includes('muc_temporary') && features.includes('muc_unsecured') && features.includes('muc_semianonymous'));
    await a.send(xml('message', { to: `strict@${SERVICE}`, type: 'groupchat' }, xml('body', {}, 'still fine')));
    await a.next(bodyIs('still fine'));
    // Messages to a room that does not exist (§17.2 rule 3).
    await a.send(xml('message', { to: `nowhere@${SERVICE}`, type: 'groupchat', id: 'nowhere' }, xml('body', {}, 'x')));
    assert.equal(condition(await a.next((s) => s.attrs.id === 'nowhere')), 'item-not-found');
  });

  test('groupchat 1.0 entry (presence without <x/>) is accepted by default', async () => {
    const a = await login('alice', 'gc');
    await createRoom(a, 'oldies', 'Alice');
    const e = await login('erin', 'gc');
    await e.send(xml('presence', { to: `oldies@${SERVICE}/Erin` }));
    assert.deepEqual(codes(await e.next((s) => presenceFrom(`oldies@${SERVICE}/Erin`)(s) && codes(s).includes(110))), [110]);
  });
});

describe('XEP-0045 rooms across a restart, and the groupchat 1.0 kick', () => {
  test('a persistent room keeps its configuration, affiliations, subject and history; a temporary one does not survive', async () => {
    let srv = await startTestServer();
    for (const u of ['alice', 'bob', 'carol', 'dave']) await srv.createUser(u, `${u}-pw`);
    let a = await xmppjs(srv.port, 'alice', 'alice-pw', 'r');
    await createRoom(a, 'keep', 'Alice', { 'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_roomname': 'Kept', 'muc#roomconfig_membersonly': '1' });
    await admin(a, 'keep', [
      xml('item', { jid: 'bob@localhost', affiliation: 'member' }),
      xml('item', { jid: 'carol@localhost', affiliation: 'admin' }),
      xml('item', { jid: 'dave@localhost', affiliation: 'outcast' }),
    ]);
    await a.send(xml('message', { to: `keep@${SERVICE}`, type: 'groupchat' }, xml('subject', {}, 'Kept subject')));
    for (const body of ['one', 'two']) {
      await a.send(xml('message', { to: `keep@${SERVICE}`, type: 'groupchat' }, xml('body', {}, body)));
      await a.next(bodyIs(body));
    }
    await createRoom(a, 'fleeting', 'Alice');
    await a.stop();
    await new Promise((r) => setTimeout(r, 100));
    const dataDir = srv.dataDir;
    await srv.stop(false);

    srv = await startTestServer({}, dataDir);
    try {
      a = await xmppjs(srv.port, 'alice', 'alice-pw', 'r');
      const rooms = await a.iq(xml('iq', { type: 'get', to: SERVICE }, xml('query', { xmlns: DISCO_ITEMS })));
      assert.deepEqual(rooms.getChild('query')!.getChildren('item').map((i) => [i.attrs.jid, i.attrs.name]), [[`keep@${SERVICE}`, 'Kept']]);
      const list = async (aff: string) =>
        (await a.iq(xml('iq', { type: 'get', to: `keep@${SERVICE}` }, xml('query', { xmlns: ADMIN }, xml('item', { affiliation: aff })))))
          .getChild('query')!.getChildren('item').map((i) => i.attrs.jid);
      assert.deepEqual(await list('owner'), ['alice@localhost']);
      assert.deepEqual(await list('admin'), ['carol@localhost']);
      assert.deepEqual(await list('member'), ['bob@localhost']);
      assert.deepEqual(await list('outcast'), ['dave@localhost']);
      const b = await xmppjs(srv.port, 'bob', 'bob-pw', 'r');
      await b.send(xml('presence', { to: `keep@${SERVICE}/Bob` }, xml('x', { xmlns: MUC })));
      const subject = await b.next((s) => s.is('message') && s.getChild('subject') !== undefined);
      assert.equal(subject.getChildText('subject'), 'Kept subject');
      const history = b.stanzas.filter((s) => s.is('message') && s.getChild('body')).map((m) => m.getChildText('body'));
      assert.deepEqual(history, ['one', 'two']);
      const d = await xmppjs(srv.port, 'dave', 'dave-pw', 'r');
      assert.equal(condition(await join(d, 'keep', 'Dave')), 'forbidden');
      const info = await b.iq(xml('iq', { type: 'get', to: `keep@${SERVICE}` }, xml('query', { xmlns: DISCO_INFO })));
      const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
      assert.ok(features.includes('muc_persistent') && features.includes('muc_membersonly'));
      await Promise.all([a.stop(), b.stop(), d.stop()]);
    } finally {
      await srv.stop();
    }
  });

  test('a client that disconnects leaves its rooms (its server sends the unavailable); shutdown tells occupants 332', async () => {
    const srv = await startTestServer();
    let stopped = false;
    try {
      for (const u of ['alice', 'bob']) await srv.createUser(u, `${u}-pw`);
      const a = await xmppjs(srv.port, 'alice', 'alice-pw', 'r');
      const b = await xmppjs(srv.port, 'bob', 'bob-pw', 'r');
      await createRoom(a, 'bye', 'Alice');
      await join(b, 'bye', 'Bob');
      await b.stop();
      assert.deepEqual(codes(await a.next(presenceFrom(`bye@${SERVICE}/Bob`, 'unavailable'))), []);
      const stopping = srv.stop();
      stopped = true;
      const shutdown = await a.next(presenceFrom(`bye@${SERVICE}/Alice`, 'unavailable'));
      assert.deepEqual(codes(shutdown), [110, 332]);
      await stopping;
      await a.stop();
    } finally {
      if (!stopped) await srv.stop();
    }
  });

  test('with groupchat_1_0 off, presence without <x/> from a non-occupant gets the 110/307/333 kick (§7.2.20)', async () => {
    const srv = await startTestServer({ modules: { muc: { groupchat_1_0: false } } });
    try {
      await srv.createUser('alice', 'alice-pw');
      const a = await xmppjs(srv.port, 'alice', 'alice-pw', 'r');
      await a.send(xml('presence', { to: `any@${SERVICE}/Alice` }));
      const kick = await a.next(presenceFrom(`any@${SERVICE}/Alice`, 'unavailable'));
      assert.deepEqual(codes(kick), [110, 307, 333]);
      await a.stop();
    } finally {
      await srv.stop();
    }
  });
});
