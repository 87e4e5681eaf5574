// In-band registration (XEP-0077) against the real server: slixmpp's xep_0077 plugin registers, changes
// passwords and removes accounts; @xmpp/client logs in with the result; RawClient covers what slixmpp
// cannot say (malformed requests, wire order, exact error payloads).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { xmppjsClient } from './helpers/xmppjs.ts';
import { NS, stanzaErrorCondition, type XmlElement } from '@parley/xmpp';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { requireSlixmpp, runSlixmppRegister, type SliEvent } from './helpers/slixmpp.ts';
import { RawClient } from './helpers/raw-client.ts';
import { KvStore } from '../src/storage/index.ts';
import { ADMIN_COMMANDS } from '../src/core/admin-commands.ts';
import { createInvite, loadInviteKey } from '../src/core/invites.ts';
import { resolveDataPath } from '../src/config/index.ts';


const NS_REGISTER = 'jabber:iq:register';
const NS_FEATURE = 'http://jabber.org/features/iq-register';

/** Logs in with @xmpp/client; returns 'ok' or the SASL/stream condition it failed with. */
async function xmppjsLogin(port: number, username: string, password: string): Promise<string> {
  const x = xmppjsClient(port, username, password, 'xjs');
  try {
    await x.start();
    await x.stop();
    return 'ok';
  } catch (err) {
    await x.stop().catch(() => {});
    return (err as { condition?: string }).condition ?? String(err);
  }
}

/** Runs the slixmpp registration driver to the end. */
async function sli(port: number, scenario: 'register' | 'passwd' | 'remove' | 'login', jid: string, password: string, ...args: string[]) {
  const r = await runSlixmppRegister(port, scenario, jid, password, ...args).done;
  const find = (name: string): SliEvent | undefined => r.events.find((e) => e.event === name);
  const features = r.events.filter((e) => e.event === 'features').map((e) => e.features as string[]);
  return { ...r, find, features, dump: `${JSON.stringify(r.events)}\n${r.stderr.slice(-1500)}` };
}

/** A TLS-protected stream before authentication, features read. */
async function preAuth(port: number, domain = 'localhost'): Promise<{ c: RawClient; features: XmlElement }> {
  const c = await RawClient.connect(port);
  c.open(domain);
  await c.startTls();
  c.open(domain);
  const features = await c.next('features', NS.STREAM);
  return { c, features };
}

/** The `<error/>` of an iq error reply: condition, type and legacy code (XEP-0077 §9). */
function errorOf(iq: XmlElement): { condition: string | undefined; type: string | undefined; code: string | undefined } {
  assert.equal(iq.attrs.type, 'error', iq.toString());
  const e = iq.getChild('error');
  return { condition: stanzaErrorCondition(iq), type: e?.attrs.type, code: e?.attrs.code };
}

const registerIq = (id: string, body: string) => `<iq type='set' id='${id}'><query xmlns='${NS_REGISTER}'>${body}</query></iq>`;

describe('XEP-0077 with the default policy on localhost (open)', () => {
  let srv: TestServer;
  before(async () => {
    requireSlixmpp();
    srv = await startTestServer();
    await srv.createUser('alice', 'alice-pw');
  });
  after(() => srv.stop());

  test('slixmpp registers on the <register/> stream feature (§8, §3.1); @xmpp/client then logs in', async () => {
    const r = await sli(srv.port, 'register', 'newbie@localhost', 'newbie-pw');
    // The feature is offered once the stream is TLS-protected, not before (§11), and not after authentication.
    assert.deepEqual(r.features[0], ['starttls'], r.dump);
    assert.ok(r.features[1]?.includes('register'), r.dump);
    assert.ok(!r.features[2]?.includes('register'), r.dump);
    const form = r.find('form');
    assert.deepEqual(form?.legacy, ['password', 'username'], r.dump);
    assert.equal(form?.form, null, 'no data form without extra fields');
    assert.ok(r.find('registered'), r.dump);
    assert.equal(r.find('session')?.jid?.toString().split('/')[0], 'newbie@localhost', r.dump);
    assert.equal(await xmppjsLogin(srv.port, 'newbie', 'newbie-pw'), 'ok');
  });

  test('a taken username → conflict (409, §3.1); the existing account is untouched', async () => {
    const r = await sli(srv.port, 'register', 'alice@localhost', 'stolen-pw');
    assert.deepEqual({ ...r.find('register-error'), text: undefined }, { event: 'register-error', condition: 'conflict', type: 'cancel', code: '409', text: undefined }, r.dump);
    assert.equal(await xmppjsLogin(srv.port, 'alice', 'alice-pw'), 'ok');
    assert.equal(await xmppjsLogin(srv.port, 'alice', 'stolen-pw'), 'not-authorized');
  });

  test('a missing password → not-acceptable (406, §3.1); nothing is created', async () => {
    const r = await sli(srv.port, 'register', 'nopass@localhost', 'x', '--omit=password');
    const e = r.find('register-error');
    assert.equal(e?.condition, 'not-acceptable', r.dump);
    assert.equal(e?.type, 'modify');
    assert.equal(e?.code, '406');
    assert.equal(await srv.server.accounts.exists('nopass'), false);
  });

  test('before authentication (RawClient): fields, empty password, bad username, remove, wrong payloads', async () => {
    const { c, features } = await preAuth(srv.port);
    try {
      assert.ok(features.getChild('register', NS_FEATURE));
      const get = await c.request(`<iq type='get' id='g1'><query xmlns='${NS_REGISTER}'/></iq>`);
      assert.equal(get.attrs.type, 'result');
      const q = get.getChild('query', NS_REGISTER)!;
      assert.deepEqual(q.getChildren().map((e) => e.name), ['instructions', 'username', 'password']);
      // §3.1 footnote: an empty <password/> is information not provided.
      assert.deepEqual(errorOf(await c.request(registerIq('s1', '<username>emptypw</username><password/>'))), {
        condition: 'not-acceptable',
        type: 'modify',
        code: '406',
      });
      // A username that is not a valid localpart (RFC 7622 §3.3) → jid-malformed (RFC 6120 §8.3.3.8).
      assert.deepEqual(errorOf(await c.request(registerIq('s2', '<username>bad user</username><password>pw</password>'))), {
        condition: 'jid-malformed',
        type: 'modify',
        code: '400',
      });
      // §3.2 Unregister Error Cases: not registered with the server.
      assert.equal(errorOf(await c.request(registerIq('s3', '<remove/>'))).condition, 'unexpected-request');
      // RFC 6120 §8.2.3: one payload.
      assert.equal(errorOf(await c.request(`<iq type='get' id='g2'><query xmlns='${NS_REGISTER}'/><query xmlns='${NS_REGISTER}'/></iq>`)).condition, 'bad-request');
      // Only the server answers before authentication.
      assert.equal(errorOf(await c.request(`<iq type='get' id='g3' to='alice@localhost'><query xmlns='${NS_REGISTER}'/></iq>`)).condition, 'service-unavailable');
      // An error never echoes the submitted password.
      const err = await c.request(registerIq('s4', '<username>alice</username><password>secret-echo</password>'));
      assert.equal(errorOf(err).condition, 'conflict');
      assert.ok(!err.toString().includes('secret-echo'));
      // The stream is still usable: register, then authenticate on the same stream (§3.1.1 "bootstrap").
      const ok = await c.request(registerIq('s5', '<username>bootstrap</username><password>boot-pw</password>'));
      assert.equal(ok.attrs.type, 'result', ok.toString());
    } finally {
      c.close();
    }
    assert.equal(await xmppjsLogin(srv.port, 'bootstrap', 'boot-pw'), 'ok');
  });

  test('jabber:iq:register is in the server’s disco#info (§10)', async () => {
    const { client: c } = await RawClient.login(srv.port, 'alice', 'alice-pw', 'disco');
    try {
      const info = await c.request(`<iq type='get' id='d1' to='localhost'><query xmlns='${NS.DISCO_INFO}'/></iq>`);
      const vars = info.getChild('query', NS.DISCO_INFO)!.getChildren('feature').map((f) => f.attrs.var);
      assert.ok(vars.includes(NS_REGISTER), vars.join(' '));
    } finally {
      c.close();
    }
  });

  test('slixmpp reads <registered/> and changes the password (§3.3): the old one fails, the new one works', async () => {
    await srv.createUser('pat', 'old-pw');
    const r = await sli(srv.port, 'passwd', 'pat@localhost', 'old-pw', 'new-pw');
    assert.deepEqual(r.find('info'), { event: 'info', registered: true, username: 'pat' }, r.dump);
    assert.ok(r.find('passwd-result'), r.dump);
    assert.equal(await xmppjsLogin(srv.port, 'pat', 'old-pw'), 'not-authorized');
    assert.equal(await xmppjsLogin(srv.port, 'pat', 'new-pw'), 'ok');
  });

  test('password change errors (§3.3 table, RawClient): another username, empty password, wrong old_password', async () => {
    await srv.createUser('quinn', 'quinn-pw');
    const { client: c } = await RawClient.login(srv.port, 'quinn', 'quinn-pw', 'pw');
    try {
      const other = await c.request(registerIq('p1', '<username>alice</username><password>hijack</password>'));
      assert.deepEqual(errorOf(other), { condition: 'bad-request', type: 'modify', code: '400' });
      // §3.3: "SHOULD NOT return the original XML" of a password change.
      assert.equal(other.getChild('query', NS_REGISTER), undefined);
      assert.ok(!other.toString().includes('hijack'));
      // An empty <password/> keeps the existing password.
      assert.equal(errorOf(await c.request(registerIq('p2', '<username>quinn</username><password/>'))).condition, 'bad-request');
      const form = (old: string, pw: string) =>
        `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>jabber:iq:register:changepassword</value></field>` +
        `<field var='username'><value>quinn@localhost</value></field><field var='old_password'><value>${old}</value></field>` +
        `<field var='password'><value>${pw}</value></field></x>`;
      assert.deepEqual(errorOf(await c.request(registerIq('p3', form('wrong', 'x-pw')))), { condition: 'not-authorized', type: 'auth', code: '401' });
      // To the server's address works as well as with no 'to'.
      const ok = await c.request(registerIq('p4', form('quinn-pw', 'form-pw')).replace("<iq type='set'", "<iq type='set' to='localhost'"));
      assert.equal(ok.attrs.type, 'result', ok.toString());
      assert.equal(ok.attrs.from, 'localhost');
      // Not for somebody else's account: no answer on their behalf.
      const elsewhere = await c.request(`<iq type='get' id='p5' to='alice@localhost'><query xmlns='${NS_REGISTER}'/></iq>`);
      assert.equal(errorOf(elsewhere).condition, 'service-unavailable');
    } finally {
      c.close();
    }
    assert.equal(await xmppjsLogin(srv.port, 'quinn', 'form-pw'), 'ok');
  });

  test('slixmpp removes its account (§3.2): result, not-authorized stream error on every session, data gone, login fails', async () => {
    await srv.createUser('rem', 'rem-pw');
    const kv = new KvStore(srv.server.storage);
    await kv.set('localhost', 'rem', 'private', 'x', '<x/>');
    // A second session of the account, with @xmpp/client.
    const other = xmppjsClient(srv.port, 'rem', 'rem-pw', 'other');
    const otherError = new Promise<string>((resolve) => other.on('error', (e) => resolve((e as { condition?: string }).condition ?? String(e))));
    await other.start();
    try {
      const r = await sli(srv.port, 'remove', 'rem@localhost', 'rem-pw');
      assert.ok(r.find('remove-result'), r.dump);
      assert.deepEqual(r.find('stream-error'), { event: 'stream-error', condition: 'not-authorized', text: 'the account was removed' }, r.dump);
      assert.equal(await otherError, 'not-authorized');
    } finally {
      await other.stop().catch(() => {});
    }
    assert.equal(await srv.server.accounts.exists('rem'), false);
    // ON DELETE CASCADE took the account's data with it.
    assert.equal(await kv.get('localhost', 'rem', 'private', 'x'), null);
    assert.equal(await xmppjsLogin(srv.port, 'rem', 'rem-pw'), 'not-authorized');
  });

  test('removal on the wire (RawClient): the result comes before the stream error; <remove/> must be alone', async () => {
    await srv.createUser('wire', 'wire-pw');
    const { client: c } = await RawClient.login(srv.port, 'wire', 'wire-pw', 'w');
    try {
      // §3.2 Unregister Error Cases: bad-request when <remove/> is not the only child.
      assert.equal(errorOf(await c.request(registerIq('r1', '<remove/><username>wire</username>'))).condition, 'bad-request');
      assert.equal(await srv.server.accounts.exists('wire'), true);
      c.send(registerIq('r2', '<remove/>'));
      await c.waitClosed();
      const result = c.raw.indexOf("<iq type='result' id='r2'");
      const streamError = c.raw.indexOf('<stream:error><not-authorized');
      assert.ok(result > 0 && streamError > result, c.raw.slice(-600));
    } finally {
      c.close();
    }
  });
});

describe('XEP-0077 with an extra field (email, required) in a data form (§4, §6)', () => {
  let srv: TestServer;
  before(async () => {
    requireSlixmpp();
    srv = await startTestServer({ modules: { register: { extra_fields: [{ var: 'email', label: 'Email address', required: true }] } } });
  });
  after(() => srv.stop());

  test('the form has FORM_TYPE jabber:iq:register and a required email; <email/> is offered too', async () => {
    const r = await sli(srv.port, 'register', 'eve@localhost', 'eve-pw', '--omit=email');
    const form = r.find('form');
    // email is a defined iq:register field, so the legacy fields come with the form (§6 "x:data form + iq:register fields").
    assert.deepEqual(form?.legacy, ['email', 'password', 'username'], r.dump);
    const fields = form?.form as Array<{ var: string; type: string; label: string; required: boolean; value: unknown }>;
    assert.deepEqual(fields.find((f) => f.var === 'FORM_TYPE'), { var: 'FORM_TYPE', type: 'hidden', label: '', required: false, value: [NS_REGISTER] });
    assert.deepEqual(fields.find((f) => f.var === 'email'), { var: 'email', type: 'text-single', label: 'Email address', required: true, value: null });
    // The form submitted without email.
    assert.equal(r.find('register-error')?.condition, 'not-acceptable', r.dump);
    assert.equal(await srv.server.accounts.exists('eve'), false);
  });

  test('the iq:register fields without <email/> → not-acceptable; the form with it registers, and the email is on file', async () => {
    const legacy = await sli(srv.port, 'register', 'eve@localhost', 'eve-pw', '--legacy');
    assert.equal(legacy.find('register-error')?.condition, 'not-acceptable', legacy.dump);
    const r = await sli(srv.port, 'register', 'eve@localhost', 'eve-pw', 'email=eve@example.org');
    assert.ok(r.find('registered'), r.dump);
    assert.ok(r.find('session'), r.dump);
    // §3.1: <registered/> with "the registration information currently on file".
    const { client: c } = await RawClient.login(srv.port, 'eve', 'eve-pw', 'r');
    try {
      const q = (await c.request(`<iq type='get' id='i1'><query xmlns='${NS_REGISTER}'/></iq>`)).getChild('query', NS_REGISTER)!;
      assert.ok(q.getChild('registered'));
      assert.equal(q.getChildText('username'), 'eve');
      assert.equal(q.getChildText('email'), 'eve@example.org');
    } finally {
      c.close();
    }
  });
});

describe('XEP-0077 with registration closed', () => {
  let srv: TestServer;
  before(async () => {
    requireSlixmpp();
    srv = await startTestServer({ modules: { register: { policy: 'closed' } } });
    await srv.createUser('carl', 'carl-pw');
  });
  after(() => srv.stop());

  test('no <register/> feature: slixmpp does not register (its login then fails)', async () => {
    const r = await sli(srv.port, 'register', 'newcomer@localhost', 'pw');
    assert.ok(r.features.length >= 2, r.dump);
    assert.ok(r.features.every((f) => !f.includes('register')), r.dump);
    assert.equal(r.find('form'), undefined);
    assert.equal(r.find('auth-failed')?.condition, 'not-authorized', r.dump);
    assert.equal(await srv.server.accounts.exists('newcomer'), false);
  });

  test('get and set → service-unavailable (503, §3.1 "does not support In-Band Registration")', async () => {
    const { c, features } = await preAuth(srv.port);
    try {
      assert.equal(features.getChild('register', NS_FEATURE), undefined);
      assert.deepEqual(errorOf(await c.request(`<iq type='get' id='c1'><query xmlns='${NS_REGISTER}'/></iq>`)), {
        condition: 'service-unavailable',
        type: 'cancel',
        code: '503',
      });
      assert.equal(errorOf(await c.request(registerIq('c2', '<username>x</username><password>y</password>'))).condition, 'service-unavailable');
    } finally {
      c.close();
    }
  });

  test('accounts still change their password in-band', async () => {
    const r = await sli(srv.port, 'passwd', 'carl@localhost', 'carl-pw', 'carl-pw2');
    assert.ok(r.find('passwd-result'), r.dump);
    assert.equal(await xmppjsLogin(srv.port, 'carl', 'carl-pw2'), 'ok');
  });

  test('the automatic policy is closed for a domain other than localhost', async () => {
    const other = await startTestServer({ domain: 'chat.example' });
    try {
      const { c, features } = await preAuth(other.port, 'chat.example');
      try {
        assert.equal(features.getChild('register', NS_FEATURE), undefined);
        assert.equal(errorOf(await c.request(`<iq type='get' id='a1'><query xmlns='${NS_REGISTER}'/></iq>`)).condition, 'service-unavailable');
      } finally {
        c.close();
      }
    } finally {
      await other.stop();
    }
  });
});

describe('XEP-0077 rate limit per IP address', () => {
  before(() => requireSlixmpp());

  test('with exempt: [] the registration beyond rate_limit.max → not-acceptable, type wait (§3.1.1)', async () => {
    const srv = await startTestServer({ modules: { register: { rate_limit: { max: 2, window: '1h' }, exempt: [] } } });
    await srv.createUser('taken', 'pw');
    try {
      // A failed registration does not use up the allowance.
      const conflict = await sli(srv.port, 'register', 'taken@localhost', 'pw');
      assert.equal(conflict.find('register-error')?.condition, 'conflict', conflict.dump);
      for (const u of ['rl1', 'rl2']) {
        const r = await sli(srv.port, 'register', `${u}@localhost`, 'pw');
        assert.ok(r.find('registered'), r.dump);
      }
      const r = await sli(srv.port, 'register', 'rl3@localhost', 'pw');
      const e = r.find('register-error');
      assert.equal(e?.condition, 'not-acceptable', r.dump);
      assert.equal(e?.type, 'wait');
      assert.equal(e?.code, '406');
      assert.match(String(e?.text), /too many registrations from your address; try again in (60|59)m/);
      assert.equal(await srv.server.accounts.exists('rl3'), false);
    } finally {
      await srv.stop();
    }
  });

  test('loopback is exempt by default: registrations beyond max in a row all work', async () => {
    const srv = await startTestServer({ modules: { register: { rate_limit: { max: 1 } } } });
    try {
      for (const u of ['lo1', 'lo2', 'lo3', 'lo4']) {
        const r = await sli(srv.port, 'register', `${u}@localhost`, 'pw');
        assert.ok(r.find('registered'), r.dump);
      }
    } finally {
      await srv.stop();
    }
  });
});

describe('XEP-0077 with policy invite', () => {
  let srv: TestServer;
  let invite: (args: Record<string, string | undefined>) => Promise<string[]>;
  before(async () => {
    requireSlixmpp();
    srv = await startTestServer({ modules: { register: { policy: 'invite' } } });
    invite = (args) => ADMIN_COMMANDS.get('user.invite')!.run({ accounts: srv.server.accounts, config: srv.config }, args);
  });
  after(() => srv.stop());

  test('the form asks for a token, with instructions only beside it (§6); no token → not-acceptable, a bad one → forbidden', async () => {
    const r = await sli(srv.port, 'register', 'ivan@localhost', 'pw');
    const form = r.find('form');
    assert.deepEqual(form?.legacy, [], r.dump);
    const token = (form?.form as Array<{ var: string; required: boolean }>).find((f) => f.var === 'token');
    assert.equal(token?.required, true);
    assert.equal(r.find('register-error')?.condition, 'not-acceptable', r.dump);
    const bad = await sli(srv.port, 'register', 'ivan@localhost', 'pw', 'token=abc.def.ghi.jkl');
    assert.deepEqual([bad.find('register-error')?.condition, bad.find('register-error')?.code], ['forbidden', '403'], bad.dump);
  });

  test('`user invite` prints a token that registers; a token for one username does not register another; expired ones fail', async () => {
    const [anyToken] = await invite({});
    const r = await sli(srv.port, 'register', 'ivan@localhost', 'ivan-pw', `token=${anyToken}`);
    assert.ok(r.find('registered'), r.dump);
    assert.equal(await xmppjsLogin(srv.port, 'ivan', 'ivan-pw'), 'ok');

    const [forJudy] = await invite({ username: 'judy', validity: '1h' });
    const wrong = await sli(srv.port, 'register', 'mallory@localhost', 'pw', `token=${forJudy}`);
    assert.equal(wrong.find('register-error')?.condition, 'forbidden', wrong.dump);
    const right = await sli(srv.port, 'register', 'judy@localhost', 'judy-pw', `token=${forJudy}`);
    assert.ok(right.find('registered'), right.dump);
    // Used: the account exists now.
    const again = await sli(srv.port, 'register', 'judy@localhost', 'other-pw', `token=${forJudy}`);
    assert.equal(again.find('register-error')?.condition, 'conflict', again.dump);

    const key = loadInviteKey(resolveDataPath(srv.config, 'invite.key'));
    const expired = createInvite(key, 'localhost', { validityMs: 60_000, now: Date.now() - 120_000 });
    const late = await sli(srv.port, 'register', 'late@localhost', 'pw', `token=${expired.token}`);
    assert.equal(late.find('register-error')?.condition, 'forbidden', late.dump);
    await assert.rejects(invite({ username: 'ivan' }), (e: Error & { condition?: string }) => e.condition === 'conflict');
  });
});
