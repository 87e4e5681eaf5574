// Interop: independent clients (slixmpp from Debian, @xmpp/client from npm) against the real server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startXmppjs as xmppjs, xml, xmppjsClient, type Client } from './helpers/xmppjs.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { requireSlixmpp, runSlixmpp } from './helpers/slixmpp.ts';
import { RawClient } from './helpers/raw-client.ts';



describe('independent clients', () => {
  let srv: TestServer;
  before(async () => {
    requireSlixmpp();
    srv = await startTestServer();
    await srv.createUser('alice', 'alice-pw');
    await srv.createUser('bob', 'bob-pw');
  });
  after(() => srv.stop());

  for (const mech of ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']) {
    test(`slixmpp logs in over STARTTLS with ${mech}, binds and pings the server`, async () => {
      const r = await runSlixmpp(srv.port, 'alice@localhost/sli', 'alice-pw', mech, 'login').done;
      const session = r.events.find((e) => e.event === 'session');
      assert.equal(session?.jid, 'alice@localhost/sli', r.stderr);
      const ping = r.events.find((e) => e.event === 'ping');
      assert.ok(ping, 'ping answered');
      assert.ok((ping.features as string[]).includes('urn:xmpp:ping'));
      assert.ok((ping.features as string[]).includes('http://jabber.org/protocol/disco#info'));
    });
  }

  test('slixmpp with a wrong password gets not-authorized', async () => {
    const r = await runSlixmpp(srv.port, 'alice@localhost/sli', 'wrong', 'SCRAM-SHA-256', 'login').done;
    assert.deepEqual(
      r.events.find((e) => e.event === 'auth-failed'),
      { event: 'auth-failed', condition: 'not-authorized' },
    );
    assert.equal(r.events.find((e) => e.event === 'session'), undefined);
  });

  test('@xmpp/client logs in and pings the server', async () => {
    const x = await xmppjs(srv.port, 'bob', 'bob-pw', 'xjs');
    try {
      assert.equal(x.jid?.toString(), 'bob@localhost/xjs');
      const res = await x.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(res.attrs.type, 'result');
      assert.equal(res.attrs.from, 'localhost');
    } finally {
      await x.stop();
    }
  });

  test('@xmpp/client over direct TLS (XEP-0368, xmpps://) logs in and exchanges a message with a STARTTLS client', async () => {
    // Direct TLS answers the first stream header in the turn the handshake ends, held until the
    // handshake's own records have left (TcpTransport.holdAfterHandshake): an independent client agrees.
    const direct = await xmppjs(`xmpps://127.0.0.1:${srv.tlsPort}`, 'bob', 'bob-pw', 'direct');
    const starttls = await xmppjs(srv.port, 'alice', 'alice-pw', 'plain');
    try {
      assert.equal(direct.jid?.toString(), 'bob@localhost/direct');
      const res = await direct.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      assert.equal(res.attrs.type, 'result');
      const got = new Promise<{ from: string; body: string | undefined }>((resolve) => {
        starttls.on('stanza', (s) => {
          if (s.is('message')) resolve({ from: s.attrs.from, body: s.getChildText('body') ?? undefined });
        });
      });
      await direct.send(xml('message', { to: 'alice@localhost/plain', type: 'chat', id: 'd1' }, xml('body', {}, 'over direct TLS')));
      assert.deepEqual(await got, { from: 'bob@localhost/direct', body: 'over direct TLS' });
    } finally {
      await direct.stop();
      await starttls.stop();
    }
  });

  test('@xmpp/client with a wrong password is refused with not-authorized', async () => {
    const x = xmppjsClient(srv.port, 'bob', 'nope');
    await assert.rejects(x.start(), (err: Error & { condition?: string }) => err.condition === 'not-authorized');
    await x.stop().catch(() => {});
  });

  test('a chat message to a full JID goes from @xmpp/client to slixmpp and back', async () => {
    const bob = runSlixmpp(srv.port, 'bob@localhost/sli', 'bob-pw', 'SCRAM-SHA-256', 'recv', '1');
    try {
      await bob.waitEvent('ready');
      const alice = await xmppjs(srv.port, 'alice', 'alice-pw', 'desk');
      try {
        const echo = new Promise<{ from: string; to: string; body: string | undefined }>((resolve) => {
          alice.on('stanza', (s) => {
            if (s.is('message') && s.attrs.type === 'chat') resolve({ from: s.attrs.from, to: s.attrs.to, body: s.getChildText('body') ?? undefined });
          });
        });
        await alice.send(xml('message', { to: 'bob@localhost/sli', type: 'chat', id: 'm1' }, xml('body', {}, 'hello bob')));
        const got = await bob.waitEvent('message');
        // The server stamped the sender's full JID (RFC 6120 §8.1.2.1).
        assert.equal(got.frm, 'alice@localhost/desk');
        assert.equal(got.to, 'bob@localhost/sli');
        assert.equal(got.body, 'hello bob');
        const back = await echo;
        assert.deepEqual(back, { from: 'bob@localhost/sli', to: 'alice@localhost/desk', body: 'echo: hello bob' });
      } finally {
        await alice.stop();
      }
      const r = await bob.done;
      assert.equal(r.code, 0, r.stderr);
    } finally {
      bob.kill();
    }
  });

  for (const [what, bad, condition] of [
    ['malformed XML', '<message><body>oops</message>', 'not-well-formed'],
    ['an oversized stanza', `<message to='bob@localhost'><body>${'x'.repeat(300_000)}</body></message>`, 'policy-violation'],
  ] as const) {
    test(`${what} ends only the offending stream; @xmpp/client and slixmpp sessions keep working`, async () => {
      const bob = runSlixmpp(srv.port, 'bob@localhost/calm', 'bob-pw', 'SCRAM-SHA-1', 'recv', '1');
      try {
        await bob.waitEvent('ready');
        const alice = await xmppjs(srv.port, 'alice', 'alice-pw', 'calm');
        try {
          const { client: rogue } = await RawClient.login(srv.port, 'alice', 'alice-pw', 'rogue');
          rogue.send(bad);
          assert.equal(await rogue.streamError(), condition);
          await rogue.closed;
          // The other sessions are untouched: a ping round trip and a message both ways.
          const res = await alice.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
          assert.equal(res.attrs.type, 'result');
          const echo = new Promise<string | null>((resolve) => {
            alice.on('stanza', (s) => {
              if (s.is('message') && s.attrs.type === 'chat') resolve(s.getChildText('body'));
            });
          });
          await alice.send(xml('message', { to: 'bob@localhost/calm', type: 'chat' }, xml('body', {}, 'still there?')));
          assert.equal((await bob.waitEvent('message')).body, 'still there?');
          assert.equal(await echo, 'echo: still there?');
        } finally {
          await alice.stop();
        }
      } finally {
        bob.kill();
      }
    });
  }
});
