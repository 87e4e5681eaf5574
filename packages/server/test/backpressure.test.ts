// Backpressure (ARCHITECTURE §7): a client that stops reading its stream cannot make the
// server's memory grow without bound: once `limits.max_output_queue` bytes wait for it, its
// stream is closed with policy-violation (RFC 6120 §4.9.3.14) and its session ends; the
// sender and everybody else carry on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from './helpers/server.ts';
import { RawClient } from './helpers/raw-client.ts';
import { JID } from '@parley/xmpp';

test('a client that does not read is cut off at max_output_queue with policy-violation; the sender is unaffected', { timeout: 120_000 }, async () => {
  const srv = await startTestServer({ limits: { max_output_queue: 65_536 } });
  try {
    await srv.createUser('slow', 'slow-pw');
    await srv.createUser('fast', 'fast-pw');
    const { client: slow, jid: slowJid } = await RawClient.login(srv.port, 'slow', 'slow-pw', 'stuck');
    const { client: fast } = await RawClient.login(srv.port, 'fast', 'fast-pw', 'sender');
    slow.socket.pause(); // stops reading: the kernel buffers fill, then the server's queue
    const heapBefore = process.memoryUsage().heapUsed;
    const body = 'x'.repeat(8192);
    let sent = 0;
    const slowOnline = () => srv.server.sessions.get(JID.parse(slowJid)) !== undefined;
    while (slowOnline() && sent < 8000) {
      for (let i = 0; i < 50; i++) fast.send(`<message to='${slowJid}' type='chat' id='m${sent++}'><body>${body}</body></message>`);
      // Let the server read and route the batch.
      await new Promise((r) => setTimeout(r, 5));
      await fast.request(`<iq type='get' id='p${sent}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    }
    assert.equal(slowOnline(), false, `the stuck session was closed (after ${sent} messages of 8 KiB)`);
    assert.ok(sent < 8000, 'within a bounded number of messages');
    const grown = process.memoryUsage().heapUsed - heapBefore;
    assert.ok(grown < 64 * 1024 * 1024, `the server's heap grew by ${Math.round(grown / 1048576)} MiB only`);
    // The sender carries on.
    const pong = await fast.request(`<iq type='get' id='after'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.equal(pong.attrs.type, 'result');
    // The stuck client, reading again, finds the messages that were already on their way, then the stream error.
    slow.socket.resume();
    assert.equal(await slow.streamError(30_000), 'policy-violation');
    fast.socket.destroy();
  } finally {
    await srv.stop();
  }
});
