import { client, xml, type Client, type Element } from '@xmpp/client';
import { WebSocket as WsWebSocket } from 'ws';

// xmpp.js's WebSocket transport uses the global WebSocket, which Node 20 lacks; ws implements the same API.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WsWebSocket;

// The test server's certificate is self-signed; xmpp.js has no per-connection switch for that.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
process.removeAllListeners('warning');

/** An @xmpp/client (xmpp.js) session that records every stanza it receives. */
export interface Xjs {
  x: Client;
  stanzas: Element[];
  /** Waits for (and removes) the first received stanza matching `pred`. */
  next(pred: (s: Element) => boolean, ms?: number, what?: string): Promise<Element>;
  /** Sends an iq and returns the result (throws on error/timeout). */
  iq(el: Element): Promise<Element>;
  send(el: Element): Promise<void>;
  stop(): Promise<void>;
}

/**
 * An xmpp.js client for the test server (domain localhost), not started: `service` is the
 * c2s port on 127.0.0.1 (STARTTLS) or a URL (`ws://127.0.0.1:<http port>/xmpp-websocket`,
 * or `xmpps://127.0.0.1:<direct TLS port>` for XEP-0368).
 */
export function xmppjsClient(service: number | string, username: string, password: string, resource?: string): Client {
  const url = typeof service === 'number' ? `xmpp://127.0.0.1:${service}` : service;
  const x = client({ service: url, domain: 'localhost', resource, username, password });
  x.on('error', () => {});
  return x;
}

/** An xmpp.js client, started (logged in over STARTTLS and bound). */
export async function startXmppjs(port: number | string, username: string, password: string, resource: string): Promise<Client> {
  const x = xmppjsClient(port, username, password, resource);
  await x.start();
  return x;
}

/** Logs in with xmpp.js (STARTTLS, or WebSocket for a ws: URL; SASL as negotiated) and binds `resource`. */
export async function xmppjs(port: number | string, username: string, password: string, resource: string): Promise<Xjs> {
  const x = xmppjsClient(port, username, password, resource);
  const stanzas: Element[] = [];
  const waiters: Array<() => void> = [];
  x.on('stanza', (s) => {
    stanzas.push(s);
    for (const w of waiters.splice(0)) w();
  });
  await x.start();
  return {
    x,
    stanzas,
    async next(pred, ms = 5000, what = 'stanza') {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = stanzas.findIndex(pred);
        if (i >= 0) return stanzas.splice(i, 1)[0]!;
        if (Date.now() > deadline) throw new Error(`xmpp.js ${username}/${resource}: no ${what}; got ${stanzas.map(String).join('\n')}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, Math.max(1, deadline - Date.now()));
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
    iq: (el) => x.iqCaller.request(el),
    send: (el) => x.send(el),
    stop: async () => {
      await x.stop().catch(() => {});
    },
  };
}

export { xml };
export type { Client };
