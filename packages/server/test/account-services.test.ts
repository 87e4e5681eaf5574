// Account services around IM: contact addresses (XEP-0157) and extended information
// (XEP-0128) in the server's disco#info, entity capabilities (XEP-0115: the server's own
// in its stream features, verified caching of clients'), and legacy non-SASL authentication
// (XEP-0078). Independent clients: xmpp.js, aioxmpp, slixmpp; RawClient for the exact bytes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { JID, NS, buildPlain, capsVerification, parseXml, xml, type XmlElement } from '@parley/xmpp';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { RawClient } from './helpers/raw-client.ts';
import { xmppjs, xml as xjsXml } from './helpers/xmppjs.ts';
import { runDriver } from './helpers/slixmpp.ts';
import { parseConfig, ConfigError } from '../src/config/index.ts';
import { CAPS_NODE, serverInfoForms } from '../src/modules/disco.ts';
import { CAPS_EVENTS, CapsCache, capsCacheOf, type CapsChangedEvent } from '../src/modules/caps.ts';
import { NS_AUTH, NS_AUTH_FEATURE } from '../src/modules/legacyauth.ts';

const SERVERINFO = 'http://jabber.org/network/serverinfo';

const SERVER_INFO = {
  contact: {
    abuse: ['mailto:abuse@localhost'],
    admin: ['xmpp:admin@localhost', 'mailto:xmpp@localhost'],
    security: ['xmpp:security@localhost'],
    status: ['https://status.localhost/'],
    support: ['https://localhost/support', 'xmpp:support@localhost'],
  },
  extra_forms: [
    { form_type: 'urn:example:parley-test', fields: { motd: 'Welcome', ip_version: ['ipv4', 'ipv6'] } },
    { form_type: SERVERINFO, fields: { c2s_port: 5222 } },
  ],
};

/** The forms of a disco#info query: FORM_TYPE → var → values. */
function formsOf(query: XmlElement): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  for (const x of query.getChildren('x', NS.DATA_FORMS)) {
    const fields = new Map<string, string[]>();
    let type = '';
    for (const f of x.getChildren('field', NS.DATA_FORMS)) {
      const values = f.getChildren('value', NS.DATA_FORMS).map((v) => v.text());
      if (f.attrs.var === 'FORM_TYPE') {
        assert.equal(f.attrs.type, 'hidden', 'FORM_TYPE is a hidden field (XEP-0128 §2)');
        type = values[0]!;
      } else fields.set(f.attrs.var!, values);
    }
    assert.equal(x.attrs.type, 'result');
    out.set(type, fields);
  }
  return out;
}

/** Logs in with RawClient; returns the client, the post-authentication features and the bound JID. */
async function rawLogin(port: number, user: string, password: string, resource: string) {
  const { client, features } = await RawClient.authenticate(port, user, password);
  const res = await client.bind(resource);
  const jid = res.getChild('bind', NS.BIND)!.getChildText('jid')!;
  return { client, features, jid };
}

/** Polls `fn` until it returns something, or fails after `ms`. */
async function eventually<T>(fn: () => T | undefined, ms = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---------------------------------------------------------------------------------------
// Python interop drivers
// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

describe('server_info configuration', () => {
  it('defaults to no contact addresses and no forms: no extended information at all', () => {
    const c = parseConfig({});
    assert.deepEqual(c.server_info.contact.admin, []);
    assert.deepEqual(serverInfoForms(c.server_info), []);
  });

  it('values become strings; a FORM_TYPE of serverinfo is merged into the XEP-0157 form', () => {
    const forms = serverInfoForms(parseConfig({ server_info: SERVER_INFO }).server_info);
    assert.equal(forms.length, 2);
    const q = xml('query', { xmlns: NS.DISCO_INFO }, forms);
    const byType = formsOf(q);
    assert.deepEqual(byType.get(SERVERINFO)?.get('c2s_port'), ['5222']);
    assert.deepEqual(byType.get(SERVERINFO)?.get('admin-addresses'), ['xmpp:admin@localhost', 'mailto:xmpp@localhost']);
    assert.equal(byType.get(SERVERINFO)?.has('sales-addresses'), false, 'a kind with no address is left out');
    assert.deepEqual(byType.get('urn:example:parley-test')?.get('ip_version'), ['ipv4', 'ipv6']);
  });

  it('refuses what is not a URI, duplicate FORM_TYPEs, a FORM_TYPE field and contact fields in extra_forms', () => {
    const problems = (input: unknown): string => {
      try {
        parseConfig(input);
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.message;
      }
      assert.fail('expected a ConfigError');
    };
    assert.match(problems({ server_info: { contact: { admin: ['admin@localhost'] } } }), /server_info\.contact\.admin\[0\]: expected a URI/);
    assert.match(problems({ server_info: { contact: { admins: [] } } }), /server_info\.contact\.admins: unknown option/);
    assert.match(
      problems({ server_info: { extra_forms: [{ form_type: 'urn:a', fields: {} }, { form_type: 'urn:a', fields: {} }] } }),
      /server_info\.extra_forms\[1\]\.form_type: "urn:a" is listed twice/,
    );
    assert.match(problems({ server_info: { extra_forms: [{ form_type: 'urn:a', fields: { FORM_TYPE: 'x' } }] } }), /FORM_TYPE is set by form_type/);
    assert.match(
      problems({ server_info: { extra_forms: [{ form_type: SERVERINFO, fields: { 'admin-addresses': ['xmpp:a@b'] } }] } }),
      /set it with server_info\.contact\.admin/,
    );
    assert.match(problems({ modules: { legacyauth: { enabled: 'yes' } } }), /modules\.legacyauth\.enabled: expected true or false/);
  });
});

// ---------------------------------------------------------------------------------------
// XEP-0157 / XEP-0128 / XEP-0115 (server side)
// ---------------------------------------------------------------------------------------

describe('server information and the server’s entity capabilities', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ server_info: SERVER_INFO });
    await srv.createUser('alice', 'alice-pw');
    await srv.createUser('carol', 'carol-pw');
  });
  after(() => srv.stop());

  it('xmpp.js: disco#info of the server has the XEP-0157 form with the configured addresses, and the extra form', async () => {
    const x = await xmppjs(srv.port, 'alice', 'alice-pw', 'xjs');
    try {
      const res = await x.iq(xjsXml('iq', { type: 'get', to: 'localhost' }, xjsXml('query', { xmlns: NS.DISCO_INFO })));
      const q = parseXml(res.toString()).getChild('query', NS.DISCO_INFO)!;
      const forms = formsOf(q);
      const info = forms.get(SERVERINFO);
      assert.ok(info, 'the serverinfo form');
      assert.deepEqual(info.get('abuse-addresses'), ['mailto:abuse@localhost']);
      assert.deepEqual(info.get('admin-addresses'), ['xmpp:admin@localhost', 'mailto:xmpp@localhost']);
      assert.deepEqual(info.get('security-addresses'), ['xmpp:security@localhost']);
      assert.deepEqual(info.get('status-addresses'), ['https://status.localhost/']);
      assert.deepEqual(info.get('support-addresses'), ['https://localhost/support', 'xmpp:support@localhost']);
      assert.deepEqual(forms.get('urn:example:parley-test')?.get('motd'), ['Welcome']);
      const features = q.getChildren('feature', NS.DISCO_INFO).map((f) => f.attrs.var);
      assert.ok(features.includes(NS.CAPS), 'XEP-0115 §7: the caps feature');
    } finally {
      await x.stop();
    }
  });

  it('RawClient: <c/> in the stream features after authentication only; its ver is the one of disco#info at node#ver', async () => {
    const pre = await RawClient.connect(srv.port);
    pre.open();
    await pre.startTls();
    pre.open();
    const preFeatures = await pre.next('features', NS.STREAM);
    assert.equal(preFeatures.getChild('c', NS.CAPS), undefined, 'not before authentication');
    pre.close();

    const { client, features } = await rawLogin(srv.port, 'alice', 'alice-pw', 'raw-caps');
    try {
      const c = features.getChild('c', NS.CAPS);
      assert.ok(c, `caps in ${features.toString()}`);
      assert.equal(c.attrs.hash, 'sha-1');
      assert.equal(c.attrs.node, CAPS_NODE);
      const ver = c.attrs.ver!;
      // §6.2: disco#info at node#ver, answered with that node.
      const res = await client.request(
        xml('iq', { type: 'get', id: 'caps1', to: 'localhost' }, xml('query', { xmlns: NS.DISCO_INFO, node: `${CAPS_NODE}#${ver}` })),
      );
      assert.equal(res.attrs.type, 'result', res.toString());
      const q = res.getChild('query', NS.DISCO_INFO)!;
      assert.equal(q.attrs.node, `${CAPS_NODE}#${ver}`);
      assert.equal(capsVerification(q, 'sha-1'), ver, 'the advertised ver is the hash of the answer (§5.1)');
      // The plain disco#info says the same.
      const plain = await client.request(xml('iq', { type: 'get', id: 'caps2', to: 'localhost' }, xml('query', { xmlns: NS.DISCO_INFO })));
      assert.equal(capsVerification(plain.getChild('query', NS.DISCO_INFO)!), ver);
      // Any other node: item-not-found (XEP-0030 §3.2).
      const other = await client.request(
        xml('iq', { type: 'get', id: 'caps3', to: 'localhost' }, xml('query', { xmlns: NS.DISCO_INFO, node: `${CAPS_NODE}#AAAA` })),
      );
      assert.equal(other.attrs.type, 'error');
      assert.ok(other.getChild('error')?.getChild('item-not-found', NS.STANZAS));
    } finally {
      client.close();
    }
  });

  it('the ver is recomputed when a module adds or removes a feature, and the old node#ver is gone', async () => {
    const first = await rawLogin(srv.port, 'alice', 'alice-pw', 'v1');
    const ver1 = first.features.getChild('c', NS.CAPS)!.attrs.ver!;
    first.client.close();
    const remove = srv.server.disco.host.addFeature('urn:example:late-feature');
    try {
      const second = await rawLogin(srv.port, 'alice', 'alice-pw', 'v2');
      try {
        const ver2 = second.features.getChild('c', NS.CAPS)!.attrs.ver!;
        assert.notEqual(ver2, ver1);
        const res = await second.client.request(
          xml('iq', { type: 'get', id: 'n2', to: 'localhost' }, xml('query', { xmlns: NS.DISCO_INFO, node: `${CAPS_NODE}#${ver2}` })),
        );
        const q = res.getChild('query', NS.DISCO_INFO)!;
        assert.ok(q.getChildren('feature', NS.DISCO_INFO).some((f) => f.attrs.var === 'urn:example:late-feature'));
        assert.equal(capsVerification(q), ver2);
        const old = await second.client.request(
          xml('iq', { type: 'get', id: 'n1', to: 'localhost' }, xml('query', { xmlns: NS.DISCO_INFO, node: `${CAPS_NODE}#${ver1}` })),
        );
        assert.equal(old.attrs.type, 'error');
      } finally {
        second.client.close();
      }
    } finally {
      remove();
    }
    const third = await rawLogin(srv.port, 'alice', 'alice-pw', 'v3');
    assert.equal(third.features.getChild('c', NS.CAPS)!.attrs.ver, ver1, 'back to the first ver once the feature is removed');
    third.client.close();
  });

  it('aioxmpp: reads the XEP-0157 form and the caps node; its own caps presence is verified and cached by the server', async () => {
    const { client, features } = await rawLogin(srv.port, 'alice', 'alice-pw', 'probe');
    const ver = features.getChild('c', NS.CAPS)!.attrs.ver!;
    client.close();
    const events: CapsChangedEvent[] = [];
    const off = srv.server.hooks.on(CAPS_EVENTS.changed, (ev: CapsChangedEvent) => void events.push(ev));
    const py = runDriver('aioxmpp_disco.py', [String(srv.port), 'carol@localhost/aio', 'carol-pw', `--caps-node=${CAPS_NODE}#${ver}`]);
    try {
      const info = await py.waitEvent('info');
      const forms = info.forms as Record<string, Record<string, string[]>>;
      assert.deepEqual(forms[SERVERINFO]?.['admin-addresses'], ['xmpp:admin@localhost', 'mailto:xmpp@localhost']);
      assert.deepEqual(forms[SERVERINFO]?.['status-addresses'], ['https://status.localhost/']);
      assert.deepEqual(forms['urn:example:parley-test']?.['ip_version'], ['ipv4', 'ipv6']);
      assert.deepEqual(info.identities, [{ category: 'server', type: 'im', name: 'Parley' }]);
      const capsInfo = await py.waitEvent('caps-info');
      assert.deepEqual(capsInfo.features, info.features, 'the caps node answers like the server itself');

      const presence = await py.waitEvent('presence');
      const cache = capsCacheOf(srv.server.router);
      assert.ok(cache);
      const features = await eventually(() => cache.featuresOf('carol@localhost/aio'), 10000, 'aioxmpp caps verified');
      assert.ok(features.has(NS.CAPS), 'aioxmpp advertises caps');
      assert.ok(features.has(NS.DISCO_INFO));
      assert.deepEqual(cache.announced('carol@localhost/aio'), { hash: 'sha-1', node: presence.node, ver: presence.ver });
      assert.ok(cache.lookup('sha-1', presence.ver as string), 'the pair is cached globally (§5.4 rule 3.8)');
      assert.ok(events.some((e) => e.jid.toString() === 'carol@localhost/aio' && e.features.has(NS.CAPS)));
      py.send('quit');
      const end = await py.done;
      assert.equal(end.code, 0, end.stderr);
      await eventually(() => (cache.featuresOf('carol@localhost/aio') === undefined ? true : undefined), 5000, 'forgotten at session end');
    } finally {
      off();
      py.kill();
    }
  });
});

// ---------------------------------------------------------------------------------------
// XEP-0115 (client caps: verification and caching)
// ---------------------------------------------------------------------------------------

const CLIENT_NODE = 'https://client.example/raw';
const clientInfo = (extra: string[] = []) =>
  xml(
    'query',
    { xmlns: NS.DISCO_INFO },
    xml('identity', { category: 'client', type: 'pc', name: 'Raw 1.0' }),
    [NS.CAPS, NS.DISCO_INFO, 'urn:xmpp:ping', ...extra].map((f) => xml('feature', { var: f })),
  );

/** Answers the server's next caps disco#info request with `query` (node set from the request). */
async function answerCaps(c: RawClient, query: XmlElement, ms = 5000): Promise<XmlElement> {
  const req = await c.nextWhere((e) => e.name === 'iq' && e.attrs.type === 'get' && e.getChild('query', NS.DISCO_INFO) !== undefined, ms, 'caps query');
  const q = query.clone();
  q.attrs.node = req.getChild('query', NS.DISCO_INFO)!.attrs.node!;
  c.send(xml('iq', { type: 'result', id: req.attrs.id, to: req.attrs.from }, q).toString());
  return req;
}

describe('verified caching of clients’ capabilities (XEP-0115 §5.4)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
    for (const u of ['dave', 'erin', 'frank']) await srv.createUser(u, `${u}-pw`);
  });
  after(() => srv.stop());

  it('a presence with unknown caps makes the server ask node#ver; a verified answer is cached and shared', async () => {
    const cache = capsCacheOf(srv.server.router)!;
    const info = clientInfo(['urn:example:a+notify']);
    const ver = capsVerification(info);
    const a = await rawLogin(srv.port, 'dave', 'dave-pw', 'one');
    const b = await rawLogin(srv.port, 'erin', 'erin-pw', 'two');
    try {
      a.client.send(xml('presence', null, xml('c', { xmlns: NS.CAPS, hash: 'sha-1', node: CLIENT_NODE, ver })).toString());
      const req = await answerCaps(a.client, info);
      assert.equal(req.attrs.from, 'localhost');
      assert.equal(req.attrs.to, a.jid);
      assert.equal(req.getChild('query', NS.DISCO_INFO)!.attrs.node, `${CLIENT_NODE}#${ver}`, '§6.2: node#ver');
      const features = await eventually(() => cache.featuresOf(a.jid), 5000, 'verified');
      assert.ok(features.has('urn:example:a+notify'));
      // Another entity with the same (hash, ver): known at once, nobody is asked.
      b.client.send(xml('presence', null, xml('c', { xmlns: NS.CAPS, hash: 'sha-1', node: CLIENT_NODE, ver })).toString());
      const fb = await eventually(() => cache.featuresOf(b.jid), 2000, 'shared');
      assert.ok(fb.has('urn:example:a+notify'));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(b.client.elements.find((e) => e.name === 'iq' && e.attrs.type === 'get'), undefined, 'no second query');
      // Unavailable: forgotten for that JID, still cached for the pair.
      a.client.send(xml('presence', { type: 'unavailable' }).toString());
      await eventually(() => (cache.featuresOf(a.jid) === undefined ? true : undefined), 2000, 'forgotten');
      assert.ok(cache.lookup('sha-1', ver));
    } finally {
      a.client.close();
      b.client.close();
    }
  });

  it('an answer that does not hash to ver is not cached; another entity announcing it is asked (§5.4 rule 3.9)', async () => {
    const cache = capsCacheOf(srv.server.router)!;
    const honest = clientInfo(['urn:example:honest']);
    const ver = capsVerification(honest);
    const liar = await rawLogin(srv.port, 'dave', 'dave-pw', 'liar');
    const other = await rawLogin(srv.port, 'erin', 'erin-pw', 'honest');
    try {
      const c = xml('c', { xmlns: NS.CAPS, hash: 'sha-1', node: CLIENT_NODE, ver });
      liar.client.send(xml('presence', null, c).toString());
      const req = await liar.client.nextWhere((e) => e.name === 'iq' && e.attrs.type === 'get', 5000, 'query to the liar');
      // Meanwhile another resource announces the same pair: it waits for the first answer.
      other.client.send(xml('presence', null, c.clone()).toString());
      await new Promise((r) => setTimeout(r, 100));
      const poisoned = clientInfo(['urn:example:honest', 'urn:example:poison']);
      poisoned.attrs.node = req.getChild('query', NS.DISCO_INFO)!.attrs.node!;
      liar.client.send(xml('iq', { type: 'result', id: req.attrs.id, to: 'localhost' }, poisoned).toString());
      await answerCaps(other.client, honest);
      const f = await eventually(() => cache.featuresOf(other.jid), 5000, 'verified from the second entity');
      assert.ok(f.has('urn:example:honest'));
      assert.ok(!f.has('urn:example:poison'));
      assert.equal(cache.featuresOf(liar.jid)?.has('urn:example:poison') ?? false, false);

      // Ill-formed (a duplicate feature) or wrong: never cached, asked once per announcement.
      const dup = clientInfo(['urn:example:dup', 'urn:example:dup']);
      const S = 'client/pc//Raw 1.0<' + [NS.CAPS, NS.DISCO_INFO, 'urn:example:dup', 'urn:example:dup', 'urn:xmpp:ping'].sort().map((x) => x + '<').join('');
      const dupVer = createHash('sha1').update(S).digest('base64');
      liar.client.send(xml('presence', null, xml('c', { xmlns: NS.CAPS, hash: 'sha-1', node: CLIENT_NODE, ver: dupVer })).toString());
      await answerCaps(liar.client, dup);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(cache.lookup('sha-1', dupVer), undefined);
      assert.equal(cache.featuresOf(liar.jid), undefined);
      // The same presence again: not asked again.
      liar.client.send(xml('presence', null, xml('status', null, 'again'), xml('c', { xmlns: NS.CAPS, hash: 'sha-1', node: CLIENT_NODE, ver: dupVer })).toString());
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(liar.client.elements.find((e) => e.name === 'iq' && e.attrs.type === 'get'), undefined);
    } finally {
      liar.client.close();
      other.client.close();
    }
  });

  it('an error or no answer caches nothing; a legacy <c/> without hash is ignored (§5.4 rule 1)', async () => {
    const cache = capsCacheOf(srv.server.router)!;
    const f = await rawLogin(srv.port, 'frank', 'frank-pw', 'err');
    try {
      const ver = capsVerification(clientInfo(['urn:example:err']));
      f.client.send(xml('presence', null, xml('c', { xmlns: NS.CAPS, hash: 'sha-1', node: CLIENT_NODE, ver })).toString());
      const req = await f.client.nextWhere((e) => e.name === 'iq' && e.attrs.type === 'get', 5000, 'query');
      f.client.send(
        xml('iq', { type: 'error', id: req.attrs.id, to: 'localhost' }, xml('error', { type: 'cancel' }, xml('service-unavailable', { xmlns: NS.STANZAS }))).toString(),
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(cache.lookup('sha-1', ver), undefined);
      f.client.send(xml('presence', null, xml('c', { xmlns: NS.CAPS, node: CLIENT_NODE, ver: '1.0', ext: 'voice' })).toString());
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(f.client.elements.find((e) => e.name === 'iq' && e.attrs.type === 'get'), undefined, 'legacy caps: no query');
      assert.equal(cache.announced(f.jid), undefined);
    } finally {
      f.client.close();
    }
  });

  it('CapsCache alone: LRU bound, unsupported hash kept for that JID only (§5.4 rule 2)', async () => {
    const answers = new Map<string, XmlElement>();
    const asked: string[] = [];
    const cache = new CapsCache({
      maxEntries: 2,
      query: async (jid, node) => {
        asked.push(`${jid} ${node}`);
        const q = answers.get(jid.toString());
        if (!q) throw new Error('no answer');
        return q;
      },
    });
    const infos = [1, 2, 3].map((i) => clientInfo([`urn:example:n${i}`]));
    for (const [i, info] of infos.entries()) {
      const jid = JID.parse(`u${i}@localhost/r`);
      answers.set(jid.toString(), info);
      cache.observe(jid, xml('c', { xmlns: NS.CAPS, hash: 'sha-1', node: 'n', ver: capsVerification(info) }));
      await eventually(() => cache.featuresOf(jid), 1000, 'verified');
    }
    assert.equal(cache.size, 2, 'bounded');
    assert.equal(cache.lookup('sha-1', capsVerification(infos[0]!)), undefined, 'least recently used dropped');
    const md5 = JID.parse('m@localhost/r');
    answers.set(md5.toString(), clientInfo(['urn:example:md5']));
    cache.observe(md5, xml('c', { xmlns: NS.CAPS, hash: 'md5', node: 'n', ver: 'whatever' }));
    const f = await eventually(() => cache.featuresOf(md5), 1000, 'per-JID answer');
    assert.ok(f.has('urn:example:md5'));
    assert.equal(cache.size, 2, 'not cached globally');
  });

  it('CapsCache alone: one question at a time per JID; a newer announcement is asked after the answer', async () => {
    const pending: Array<{ node: string; resolve: (q: XmlElement) => void }> = [];
    const changes: string[] = [];
    const cache = new CapsCache({
      query: (_jid, node) => new Promise((resolve) => pending.push({ node, resolve })),
      onChange: (jid, features) => changes.push(`${jid} ${[...features].filter((x) => x.startsWith('urn:example')).join()}`),
    });
    const jid = JID.parse('flood@localhost/r');
    const v1 = clientInfo(['urn:example:v1']);
    const v2 = clientInfo(['urn:example:v2']);
    const v3 = clientInfo(['urn:example:v3']);
    cache.observe(jid, xml('c', { xmlns: NS.CAPS, hash: 'sha-1', node: 'n', ver: capsVerification(v1) }));
    cache.observe(jid, xml('c', { xmlns: NS.CAPS, hash: 'sha-1', node: 'n', ver: capsVerification(v2) }));
    cache.observe(jid, xml('c', { xmlns: NS.CAPS, hash: 'sha-1', node: 'n', ver: capsVerification(v3) }));
    assert.equal(pending.length, 1, 'only the first is asked while it is outstanding');
    pending[0]!.resolve(v1);
    await eventually(() => (pending.length === 2 ? true : undefined), 1000, 'the latest announcement asked next');
    assert.equal(pending[1]!.node, `n#${capsVerification(v3)}`, 'v2 was superseded by v3');
    pending[1]!.resolve(v3);
    const f = await eventually(() => cache.featuresOf(jid), 1000, 'v3 verified');
    assert.ok(f.has('urn:example:v3'));
    assert.ok(cache.lookup('sha-1', capsVerification(v1)), 'the first answer verified and was cached too');
    assert.deepEqual(changes, ['flood@localhost/r urn:example:v3']);
  });
});

// ---------------------------------------------------------------------------------------
// XEP-0078 (legacy authentication)
// ---------------------------------------------------------------------------------------

/** STARTTLS, then the features of the TLS stream (before authentication). */
async function tlsStream(port: number): Promise<{ c: RawClient; features: XmlElement }> {
  const c = await RawClient.connect(port);
  c.open();
  await c.startTls();
  c.open();
  const features = await c.next('features', NS.STREAM);
  return { c, features };
}

const authSet = (id: string, fields: Record<string, string>) =>
  xml('iq', { type: 'set', id }, xml('query', { xmlns: NS_AUTH }, Object.entries(fields).map(([k, v]) => xml(k, null, v))));

function errorOf(iq: XmlElement): { condition: string | undefined; code: string | undefined; type: string | undefined } {
  const e = iq.getChild('error');
  return { condition: e?.getChildren().find((c) => c.ns === NS.STANZAS && c.name !== 'text')?.name, code: e?.attrs.code, type: e?.attrs.type };
}

describe('legacy authentication (XEP-0078), enabled', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({ modules: { legacyauth: { enabled: true } } });
    await srv.createUser('gina', 'gina-pw');
  });
  after(() => srv.stop());

  it('slixmpp (its xep_0078 stanzas) authenticates with jabber:iq:auth, the session works', async () => {
    const py = runDriver('slixmpp_legacyauth.py', [String(srv.port), 'gina@localhost/old', 'gina-pw']);
    try {
      const end = await py.done;
      assert.equal(end.code, 0, end.stderr);
      const ev = (n: string) => py.events.find((e) => e.event === n);
      assert.ok((py.events.filter((e) => e.event === 'features').at(-1)?.features as string[]).includes('auth'), JSON.stringify(py.events));
      assert.deepEqual(ev('fields')?.fields, ['password', 'resource', 'username'], 'no digest (SCRAM-only storage)');
      assert.equal(ev('session')?.jid, 'gina@localhost/old', JSON.stringify(py.events));
      assert.ok(ev('ping'), 'XEP-0199 ping answered over the legacy session');
      assert.equal(ev('message')?.frm, 'gina@localhost/old', 'a message to itself came back');
    } finally {
      py.kill();
    }
  });

  it('slixmpp with a digest is refused with not-acceptable (406); with a wrong password, not-authorized (401)', async () => {
    const d = runDriver('slixmpp_legacyauth.py', [String(srv.port), 'gina@localhost/old', 'gina-pw', '--digest']);
    await d.done;
    assert.deepEqual(d.events.find((e) => e.event === 'auth-error'), { event: 'auth-error', step: 'set', condition: 'not-acceptable', code: '406' });
    const w = runDriver('slixmpp_legacyauth.py', [String(srv.port), 'gina@localhost/old', 'wrong']);
    await w.done;
    assert.deepEqual(w.events.find((e) => e.event === 'auth-error'), { event: 'auth-error', step: 'set', condition: 'not-authorized', code: '401' });
  });

  it('RawClient: feature on TLS streams only, fields, errors, success binds in one step, resource conflict replaces', async () => {
    // Without TLS (require_encryption on): no feature offered; STARTTLS first.
    const plain = await RawClient.connect(srv.port);
    plain.open();
    const plainFeatures = await plain.next('features', NS.STREAM);
    assert.equal(plainFeatures.getChild('auth', NS_AUTH_FEATURE), undefined);
    plain.close();

    const { c, features } = await tlsStream(srv.port);
    assert.ok(features.getChild('auth', NS_AUTH_FEATURE), features.toString());
    assert.ok(features.getChild('mechanisms', NS.SASL), 'SASL still offered (XEP-0078 §4 example)');
    // §3: the fields, the same for an unknown username; no <digest/>.
    const get = await c.request(xml('iq', { type: 'get', id: 'g1', to: 'localhost' }, xml('query', { xmlns: NS_AUTH }, xml('username', null, 'nobody'))));
    assert.equal(get.attrs.type, 'result');
    assert.deepEqual(get.getChild('query', NS_AUTH)!.getChildren().map((e) => e.name), ['username', 'password', 'resource']);
    // Missing resource → not-acceptable (406); the error does not echo the credentials.
    const missing = await c.request(authSet('s1', { username: 'gina', password: 'gina-pw' }));
    assert.deepEqual(errorOf(missing), { condition: 'not-acceptable', code: '406', type: 'modify' });
    assert.equal(missing.getChild('query', NS_AUTH), undefined);
    const wrong = await c.request(authSet('s2', { username: 'gina', password: 'nope', resource: 'r' }));
    assert.deepEqual(errorOf(wrong), { condition: 'not-authorized', code: '401', type: 'auth' });
    const unknown = await c.request(authSet('s3', { username: 'nobody', password: 'x', resource: 'r' }));
    assert.deepEqual(errorOf(unknown), { condition: 'not-authorized', code: '401', type: 'auth' });

    // A session bound with SASL first, then the same resource with iq:auth: the older is replaced.
    const older = await rawLogin(srv.port, 'gina', 'gina-pw', 'desk');
    const ok = await c.request(authSet('s4', { username: 'gina', password: 'gina-pw', resource: 'desk' }));
    assert.equal(ok.attrs.type, 'result', ok.toString());
    assert.equal(ok.children.length, 0);
    assert.equal(await older.client.streamError(), 'conflict');
    // Bound: stanzas are routed with the full JID as 'from'.
    const ping = await c.request(xml('iq', { type: 'get', id: 'p1', to: 'localhost' }, xml('ping', { xmlns: NS.PING })));
    assert.equal(ping.attrs.type, 'result');
    assert.equal(ping.attrs.to, 'gina@localhost/desk');
    assert.ok(srv.server.sessions.get(JID.parse('gina@localhost/desk')));
    c.close();
    older.client.close();
  });

  it('after a failed SASL attempt, jabber:iq:auth ends the stream with policy-violation (XEP-0078 §3, §7)', async () => {
    const { c } = await tlsStream(srv.port);
    c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${buildPlain('gina', 'bad').toString('base64')}</auth>`);
    await c.next('failure', NS.SASL);
    c.send(xml('iq', { type: 'get', id: 'g', to: 'localhost' }, xml('query', { xmlns: NS_AUTH })).toString());
    assert.equal(await c.streamError(), 'policy-violation');
    await c.waitClosed();
  });

  it('without TLS (require_encryption off) the feature is absent and a set is not-authorized', async () => {
    const open = await startTestServer({ c2s: { require_encryption: false }, modules: { legacyauth: { enabled: true } } });
    try {
      await open.createUser('gina', 'gina-pw');
      const c = await RawClient.connect(open.port);
      c.open();
      const f = await c.next('features', NS.STREAM);
      assert.equal(f.getChild('auth', NS_AUTH_FEATURE), undefined);
      const r = await c.request(authSet('s', { username: 'gina', password: 'gina-pw', resource: 'r' }));
      assert.deepEqual(errorOf(r), { condition: 'not-authorized', code: '401', type: 'auth' });
      c.close();
    } finally {
      await open.stop();
    }
  });
});

describe('legacy authentication, disabled (the default)', () => {
  let srv: TestServer;
  let off: TestServer;
  before(async () => {
    srv = await startTestServer();
    off = await startTestServer({ modules: { disabled: ['legacyauth'] } });
    await srv.createUser('gina', 'gina-pw');
  });
  after(async () => {
    await srv.stop();
    await off.stop();
  });

  it('no stream feature; requests get service-unavailable (503), XEP-0078 §3', async () => {
    const { c, features } = await tlsStream(srv.port);
    assert.equal(features.getChild('auth', NS_AUTH_FEATURE), undefined);
    const get = await c.request(xml('iq', { type: 'get', id: 'g', to: 'localhost' }, xml('query', { xmlns: NS_AUTH })));
    assert.deepEqual(errorOf(get), { condition: 'service-unavailable', code: '503', type: 'cancel' });
    const set = await c.request(authSet('s', { username: 'gina', password: 'gina-pw', resource: 'r' }));
    assert.deepEqual(errorOf(set), { condition: 'service-unavailable', code: '503', type: 'cancel' });
    assert.equal(srv.server.sessions.isOnline(JID.parse('gina@localhost')), false);
    c.close();
  });

  it('slixmpp sees no feature and logs in with SASL as usual', async () => {
    const py = runDriver('slixmpp_legacyauth.py', [String(srv.port), 'gina@localhost/new', 'gina-pw']);
    await py.done;
    assert.equal(py.events.find((e) => e.event === 'fields'), undefined, 'no iq:auth exchange');
    assert.equal(py.events.find((e) => e.event === 'session')?.jid, 'gina@localhost/new', JSON.stringify(py.events));
  });

  it('with the module not loaded at all, a jabber:iq:auth request ends the stream (not-authorized)', async () => {
    const { c } = await tlsStream(off.port);
    c.send(xml('iq', { type: 'get', id: 'g', to: 'localhost' }, xml('query', { xmlns: NS_AUTH })).toString());
    assert.equal(await c.streamError(), 'not-authorized');
  });
});
