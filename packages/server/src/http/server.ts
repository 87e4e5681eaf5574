import tls from 'node:tls';
import { isIP } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import fastifyWebsocket from '@fastify/websocket';
import type { ParleyConfig } from '../config/index.ts';
import type { CertificatePair } from '../core/certs.ts';
import type { Logger } from '../core/logger.ts';
import type { StreamTransport } from '../transports/transport.ts';
import { WebSocketTransport } from '../transports/websocket.ts';
import { BoshService } from '../transports/bosh.ts';
import { registerHostMeta } from './host-meta.ts';
import { registerChat } from './chat.ts';

/** What the HTTP side needs from the server. */
export interface HttpContext {
  config: ParleyConfig;
  certificate: CertificatePair;
  log: Logger;
  /** Starts a client stream (c2s) on a new transport. */
  openStream(transport: StreamTransport): void;
  /** `true` when in-band registration (XEP-0077) is open, for the chat page's login screen. */
  registrationOpen: boolean;
}

/** Who is on the other end of an HTTP request, as far as XMPP is concerned. */
export interface HttpPeer {
  /** The client's IP address (from X-Forwarded-For when `http.trust_proxy`). */
  address: string;
  /**
   * `true` when the connection counts as encrypted (RFC 6120 §5.3.1 policy): HTTPS, a
   * trusted proxy reporting `X-Forwarded-Proto: https`, or — with `http.secure_loopback` —
   * a plain connection from a loopback address (a local browser, or a proxy on this host).
   */
  secure: boolean;
}

/** `true` for 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopback(address: string): boolean {
  const a = address.replace(/^::ffff:/, '');
  return a === '::1' || (isIP(a) === 4 && a.startsWith('127.'));
}

/** See {@link HttpPeer}. */
export function peerOf(request: FastifyRequest, config: ParleyConfig['http']): HttpPeer {
  const socket = request.raw.socket;
  const address = (config.trust_proxy ? request.ip : socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  if (socket instanceof tls.TLSSocket) return { address, secure: true };
  if (config.trust_proxy && request.protocol === 'https') return { address, secure: true };
  return { address, secure: config.secure_loopback && isLoopback(address) && isLoopback(socket.remoteAddress ?? '') };
}

/**
 * Whether a browser page from `origin` may use the XMPP endpoints (WebSocket, BOSH): no
 * Origin header (not a browser), the server's own origin (same host and port as the request),
 * an origin listed in `http.allowed_origins`, or any when that list holds `*`.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined) return true;
  if (allowed.includes('*') || allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** One listening HTTP(S) address. */
interface HttpListener {
  app: FastifyInstance;
  secure: boolean;
}

/**
 * The server's one HTTP(S) service (ARCHITECTURE §6, fastify): XMPP over WebSocket
 * (RFC 7395) at `http.websocket.path`, BOSH (XEP-0124/0206) at `http.bosh.path`, connection
 * discovery (XEP-0156) at `/.well-known/host-meta[.json]` and the web chat page. Plain HTTP on
 * `http.port`, HTTPS with the XMPP certificate on `http.tls_port`, on each of
 * `http.interfaces`.
 */
export class HttpService {
  private readonly ctx: HttpContext;
  private listeners: HttpListener[] = [];
  private websockets = new Set<WebSocketTransport>();
  private keepalive: NodeJS.Timeout | undefined;
  /** The BOSH sessions (XEP-0124/0206), shared by every listener; `null` when `http.bosh.enabled` is off. */
  private bosh: BoshService | null;

  constructor(ctx: HttpContext) {
    this.ctx = ctx;
    const h = ctx.config.http;
    this.bosh = h.bosh.enabled
      ? new BoshService({
          config: ctx.config,
          log: ctx.log,
          openStream: (transport) => ctx.openStream(transport),
          peer: (request) => peerOf(request, h),
          originAllowed: (request) => originAllowed(request.headers.origin, request.headers.host, h.allowed_origins),
        })
      : null;
  }

  /** Binds every configured listener; throws (after releasing what was bound) on a port in use. */
  async start(): Promise<void> {
    const h = this.ctx.config.http;
    try {
      for (const secure of [false, true]) {
        const configured = secure ? h.tls_port : h.port;
        if (configured === null) continue;
        let port = configured;
        for (const host of h.interfaces) {
          const app = await this.build(secure);
          try {
            await app.listen({ host, port, listenTextResolver: () => '' });
          } catch (err) {
            await app.close();
            const code = (err as NodeJS.ErrnoException).code;
            // A machine without IPv6 cannot bind ::1 (in the default list); the other addresses still serve.
            if (isIP(host) === 6 && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') && h.interfaces.length > 1) {
              this.ctx.log.warn({ host, code }, 'http: cannot listen on an IPv6 address; skipped');
              continue;
            }
            throw err;
          }
          this.listeners.push({ app, secure });
          // Port 0: every interface shares the port the first one got.
          port = (app.server.address() as { port: number }).port;
        }
      }
    } catch (err) {
      await this.close();
      throw err;
    }
    if (h.websocket.enabled) {
      this.keepalive = setInterval(() => {
        for (const t of this.websockets) t.checkAlive();
      }, h.websocket.keepalive);
      this.keepalive.unref();
    }
  }

  private async build(secure: boolean): Promise<FastifyInstance> {
    const { config, certificate, log } = this.ctx;
    const h = config.http;
    const app = Fastify({
      logger: false,
      trustProxy: h.trust_proxy,
      ...(secure ? { https: { cert: certificate.cert, key: certificate.key, minVersion: config.tls.min_version } } : {}),
    } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
    app.setErrorHandler((err, _request, reply) => {
      const status = (err as { statusCode?: number }).statusCode ?? 500;
      if (status >= 500) log.error({ err }, 'http: request failed');
      void reply.code(status).type('text/plain; charset=utf-8').send(status >= 500 ? 'internal server error' : (err as Error).message);
    });
    if (h.websocket.enabled) await this.registerWebSocket(app);
    if (this.bosh) await this.bosh.register(app);
    registerHostMeta(app, { websocketPath: h.websocket.enabled ? h.websocket.path : null, boshPath: h.bosh.enabled ? h.bosh.path : null });
    // The page talks to the WebSocket endpoint; without it there is nothing for it to do.
    if (h.chat.enabled && h.websocket.enabled) {
      registerChat(app, {
        path: h.chat.path,
        domain: config.domain,
        websocketPath: h.websocket.path,
        registration: this.ctx.registrationOpen,
        // The "add groupchat" dialog suggests rooms on this server's MUC service (XEP-0045).
        mucDomain: config.modules.disabled.includes('muc') ? null : (config.modules.muc.host ?? `conference.${config.domain}`),
      });
    }
    return app;
  }

  /** RFC 7395 §3.1: the opening handshake (subprotocol `xmpp`, allowed origins), then one c2s stream per connection. */
  private async registerWebSocket(app: FastifyInstance): Promise<void> {
    const { config } = this.ctx;
    const h = config.http;
    await app.register(fastifyWebsocket, {
      options: {
        // Larger than a stanza may be, so the parser answers an oversized stanza with its stream error;
        // beyond this the frame is refused outright (close code 1009).
        maxPayload: config.limits.max_stanza_size + 16384,
        handleProtocols: (protocols: Set<string>) => (protocols.has('xmpp') ? 'xmpp' : false),
        perMessageDeflate: false,
        // The stream parser decodes UTF-8 strictly (invalid input is a stream error, RFC 6120 §11.6); once is enough.
        skipUTF8Validation: true,
      },
    });
    app.get(
      h.websocket.path,
      {
        websocket: true,
        preValidation: async (request, reply) => {
          const offered = String(request.headers['sec-websocket-protocol'] ?? '')
            .split(',')
            .map((p) => p.trim());
          if (!offered.includes('xmpp')) {
            // RFC 7395 §3.1: the client offers the 'xmpp' subprotocol; without it this is not an XMPP connection.
            return reply.code(400).type('text/plain; charset=utf-8').send("the WebSocket subprotocol 'xmpp' is required (RFC 7395 §3.1)");
          }
          if (!originAllowed(request.headers.origin, request.headers.host, h.allowed_origins)) {
            return reply.code(403).type('text/plain; charset=utf-8').send('this origin may not connect (http.allowed_origins)');
          }
        },
      },
      (socket, request) => {
        const peer = peerOf(request, h);
        const transport = new WebSocketTransport(socket, peer.address, peer.secure);
        this.websockets.add(transport);
        socket.on('close', () => this.websockets.delete(transport));
        this.ctx.openStream(transport);
      },
    );
  }

  /** The bound ports: `http` (plain) and `https`, `null` when disabled. */
  ports(): { http: number | null; https: number | null } {
    const port = (secure: boolean) => {
      const l = this.listeners.find((x) => x.secure === secure);
      return l ? (l.app.server.address() as { port: number }).port : null;
    };
    return { http: port(false), https: port(true) };
  }

  /** Human-readable listening addresses, e.g. `http://127.0.0.1:5280`. */
  addresses(): string[] {
    return this.listeners.map(({ app, secure }) => {
      const a = app.server.address() as { address: string; family: string; port: number };
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      return `${secure ? 'https' : 'http'}://${host}:${a.port}`;
    });
  }

  /** Stops listening and closes the HTTP connections (the XMPP streams on them are closed by the server first). */
  async close(): Promise<void> {
    clearInterval(this.keepalive);
    // Answer the held BOSH requests first: fastify's close waits for requests in flight.
    this.bosh?.close();
    const listeners = this.listeners;
    this.listeners = [];
    await Promise.all(listeners.map(({ app }) => app.close().catch(() => {})));
  }
}
