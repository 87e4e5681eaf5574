import { NS, StreamError, xml } from '@parley/xmpp';
import { defineModule } from '../core/module.ts';

/**
 * XMPP Ping (XEP-0199): answers pings to the server and to accounts (§4.2,
 * §4.3), and pings clients that have been idle for `ping.interval`, closing a
 * stream with `connection-timeout` when no answer comes within `ping.timeout`
 * (§4.1; RFC 6120 §4.6.4).
 */
export const pingModule = defineModule({
  name: 'ping',
  xeps: ['XEP-0199'],
  load(ctx) {
    ctx.onUnload(ctx.disco.host.addFeature(NS.PING));
    const pong = () => null;
    ctx.iq('host', NS.PING, { get: pong });
    ctx.iq('bare', NS.PING, { get: pong });

    const { interval, timeout } = ctx.config.ping;
    if (interval === null) return;
    const waiting = new WeakSet<object>();
    ctx.every(Math.max(1000, Math.min(interval, timeout) / 2), () => {
      const now = Date.now();
      for (const s of ctx.sessions.all()) {
        if (waiting.has(s) || now - s.lastActivity < interval) continue;
        waiting.add(s);
        const sentAt = now;
        ctx.router
          .request(xml('iq', { type: 'get', from: ctx.host, to: s.jid.toString() }, xml('ping', { xmlns: NS.PING })), timeout)
          .then(
            () => waiting.delete(s),
            (err: Error & { condition?: string }) => {
              waiting.delete(s);
              // An error reply still proves the client is alive (XEP-0199 §4.1); silence does not.
              if (err.condition === 'remote-server-timeout' && s.lastActivity <= sentAt) {
                s.close(new StreamError('connection-timeout', `no answer to a ping within ${timeout} ms`));
              }
            },
          );
      }
    });
  },
});
