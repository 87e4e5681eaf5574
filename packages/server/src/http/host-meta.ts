import type { FastifyInstance, FastifyRequest } from 'fastify';
import { escapeAttr } from '@parley/xmpp';

/** XEP-0156 §2.1: link relations of the alternative connection methods. */
const REL_WEBSOCKET = 'urn:xmpp:alt-connections:websocket';
const REL_XBOSH = 'urn:xmpp:alt-connections:xbosh';

export interface HostMetaOptions {
  /** Path of the WebSocket endpoint, or `null` when it is off. */
  websocketPath: string | null;
  /** Path of the BOSH endpoint, or `null` when it is off. */
  boshPath: string | null;
}

/**
 * The connection methods of this server as `{ rel, href }` links, with URLs built from the
 * request (its scheme — X-Forwarded-Proto behind a trusted proxy — and its Host header), so
 * they are right for whatever name and port the client reached the server by.
 */
export function connectionLinks(request: FastifyRequest, opts: HostMetaOptions): { rel: string; href: string }[] {
  const https = request.protocol === 'https';
  const host = request.host;
  const links: { rel: string; href: string }[] = [];
  if (opts.websocketPath !== null) links.push({ rel: REL_WEBSOCKET, href: `${https ? 'wss' : 'ws'}://${host}${opts.websocketPath}` });
  if (opts.boshPath !== null) links.push({ rel: REL_XBOSH, href: `${https ? 'https' : 'http'}://${host}${opts.boshPath}` });
  return links;
}

/**
 * XEP-0156 §2 (RFC 6415): `/.well-known/host-meta` (XRD) and `/.well-known/host-meta.json`
 * (JRD) list the WebSocket and BOSH endpoints. XEP-0156 §3 wants web clients on other
 * origins to read them, so these two documents — and nothing else — carry
 * `Access-Control-Allow-Origin: *`. Clients accept only `https:`/`wss:` links (§2.2 rule 1),
 * which the HTTPS listener (or a TLS-terminating proxy that sets X-Forwarded-Proto) gives.
 */
export function registerHostMeta(app: FastifyInstance, opts: HostMetaOptions): void {
  app.get('/.well-known/host-meta', async (request, reply) => {
    const links = connectionLinks(request, opts)
      .map((l) => `  <Link rel='${l.rel}' href='${escapeAttr(l.href)}'/>\n`)
      .join('');
    return reply
      .header('Access-Control-Allow-Origin', '*')
      .type('application/xrd+xml; charset=utf-8')
      .send(`<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n${links}</XRD>\n`);
  });
  app.get('/.well-known/host-meta.json', async (request, reply) => {
    return reply
      .header('Access-Control-Allow-Origin', '*')
      .type('application/json; charset=utf-8')
      .send(JSON.stringify({ links: connectionLinks(request, opts) }));
  });
}
