/**
 * The built-in web chat: a page at `http.chat.path` (default `/chat`) that runs Converse.js
 * (https://conversejs.org), the pinned `converse.js` npm package, against this server's own
 * WebSocket endpoint (RFC 7395), so a user can chat from a browser with nothing but the
 * server (the same role as Prosody's and ejabberd's mod_conversejs).
 *
 * Everything the page loads comes from this server: the Converse bundle, its lazily loaded
 * chunks (translations), `emoji.json`, fonts, images and sounds are served from the package's
 * `dist/` directory at `<path>/dist/`; the providers lists Converse would fetch from
 * data.xmpp.net, XEP-0156 connection discovery, BOSH and Twemoji are switched off, and media
 * linked in messages is shown as links (a user may still open one by hand). The
 * Content-Security-Policy holds the page to that.
 *
 * The page computes the WebSocket URL from its own location (ws: under http:, wss: under
 * https:, same host), and keeps working when a reverse proxy mounts the whole HTTP server under
 * a sub-path (`/parley/chat` → `/parley/xmpp-websocket`); see docs/web.md.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fastifyStatic from '@fastify/static';
import { escapeAttr } from '@parley/xmpp';

export interface ChatOptions {
  /** URL path of the page, e.g. `/chat` (`/` serves it at the root). */
  path: string;
  /** The XMPP domain users log in to: they type only their username. */
  domain: string;
  /** Path of the WebSocket endpoint (e.g. `/xmpp-websocket`), or an absolute ws:/wss: URL. */
  websocketPath: string;
  /** Offer in-band registration (XEP-0077) on the login screen. */
  registration: boolean;
  /** The MUC service (XEP-0045) rooms are created on, or `null` when there is none. */
  mucDomain: string | null;
}

/** The directory of the installed Converse build (`node_modules/converse.js/dist`, wherever hoisted). */
export function converseDistDir(): string {
  // The package's `exports` hide package.json but expose ./dist/*.
  return dirname(createRequire(import.meta.url).resolve('converse.js/dist/converse.min.js'));
}

/** JSON safe inside a `<script type="application/json">` element (no `</script>`, no `<!--`). */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * What the page may do. Scripts only from this origin (the bundle is an ES module; its chunks
 * are `import()`ed from the same directory) plus WebAssembly for OMEMO's crypto module; styles
 * from this origin and inline (Converse's templates set `style` attributes); connections only to
 * this origin (which includes ws:/wss: to the same host and port). Images and media may come
 * from https: because a user can choose to display media linked in a message.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self'",
  "img-src 'self' data: blob: https:",
  "media-src 'self' data: blob: https:",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "manifest-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "object-src 'none'",
  "frame-ancestors 'self'",
].join('; ');

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin');
}

/**
 * The page's module script. It reads its settings from the JSON block in the page, derives the
 * WebSocket URL and the assets URL from where it was loaded, then starts Converse. It is a file
 * of its own (not inline) so the CSP needs no 'unsafe-inline' for scripts.
 */
const BOOT_JS = `// Parley web chat: starts Converse.js against this server's WebSocket endpoint.
// The page also loads the bundle with a <script src> of its own (same URL, so the same module):
// Converse finds its OMEMO WebAssembly next to that element's src.
import './dist/converse.min.js';

const cfg = JSON.parse(document.getElementById('parley-chat-config').textContent);

function websocketUrl() {
  if (/^wss?:\\/\\//i.test(cfg.websocketPath)) return cfg.websocketPath;
  // The directory this script was served from is <prefix><path>/; a reverse proxy may have
  // mounted the server under <prefix>, so the WebSocket endpoint is at <prefix><websocketPath>.
  const dir = new URL('./', import.meta.url).pathname;
  const mount = cfg.path + '/';
  const prefix = dir.endsWith(mount) ? dir.slice(0, dir.length - mount.length) : '';
  const url = new URL(prefix + cfg.websocketPath, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.hash = '';
  return url.href;
}

// Converse's fullscreen footer shows its sponsors' logos from conversejs.org; this one keeps the
// credit and loads nothing. Elements defined by a plugin's initialize() replace the built-in ones.
window.converse.plugins.add('parley-chat', {
  initialize() {
    const { api } = this._converse;
    const version = window.converse.env?.VERSION_NAME ?? '';
    api.elements.define('converse-footer', class extends HTMLElement {
      connectedCallback() {
        if (this.firstChild) return;
        const p = document.createElement('p');
        p.className = 'brand-subtitle subdued text-center mt-auto py-3';
        const a = document.createElement('a');
        a.href = 'https://conversejs.org';
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        a.textContent = 'Converse';
        p.append(a, \` \${version} · an open-source XMPP client, served by Parley\`);
        this.append(p);
      }
    });
  },
});

window.converse.initialize({
  whitelisted_plugins: ['parley-chat'],
  websocket_url: websocketUrl(),
  discover_connection_methods: false,
  assets_path: new URL('./dist/', import.meta.url).href,
  view_mode: 'fullscreen',
  locked_domain: cfg.domain,
  domain_placeholder: cfg.domain,
  allow_registration: cfg.registration,
  registration_domain: cfg.registration ? cfg.domain : '',
  show_connection_url_input: false,
  // A room name typed without a domain is created on this server's MUC service.
  muc_domain: cfg.mucDomain ?? undefined,
  // No requests to third parties: no providers lists, no Twemoji images, no link previews.
  autocomplete_providers_url: '',
  xmpp_providers_url: '',
  use_system_emojis: true,
  fetch_url_headers: false,
  render_media: false,
  embed_3rd_party_media_players: false,
  auto_reconnect: true,
  loglevel: 'warn',
});
`;

function pageHtml(path: string, opts: ChatOptions): string {
  // Static references are relative to the page (whose URL is <prefix><path>), so they keep
  // working under a reverse-proxy prefix: for /chat they are chat/…, for / they are ./…
  const last = path.slice(path.lastIndexOf('/') + 1);
  const rel = last === '' ? './' : `${last}/`;
  const config = { path, domain: opts.domain, websocketPath: opts.websocketPath, registration: opts.registration, mucDomain: opts.mucDomain };
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeAttr(opts.domain)} — chat</title>
<link rel="icon" href="${escapeAttr(rel)}dist/images/favicon.ico">
<link rel="stylesheet" href="${escapeAttr(rel)}dist/converse.min.css">
<script type="application/json" id="parley-chat-config">${jsonForScript(config)}</script>
<script type="module" src="${escapeAttr(rel)}dist/converse.min.js"></script>
<script type="module" src="${escapeAttr(rel)}parley-chat.js"></script>
</head>
<body class="converse-fullscreen">
<noscript>This chat needs JavaScript. Any XMPP client works too: log in as <i>username</i>@${escapeAttr(opts.domain)}.</noscript>
</body>
</html>
`;
}

/**
 * Adds the web chat to `app`: `GET <path>` (the page), `GET <path>/parley-chat.js` (its boot
 * script) and `GET <path>/dist/*` (the Converse build, through @fastify/static with
 * `decorateReply: false` so it co-exists with other static registrations). `<path>/` redirects
 * to `<path>`.
 */
export function registerChat(app: FastifyInstance, opts: ChatOptions): void {
  // http.chat.path is validated by the config schema (`/`, or segments without a trailing `/`).
  const path = opts.path === '/' ? '' : opts.path;
  const html = pageHtml(path, opts);
  const page = path === '' ? '/' : path;

  const last = path.slice(path.lastIndexOf('/') + 1);
  const toPage = (url: string) => {
    const q = url.indexOf('?');
    return `../${last}${q >= 0 ? url.slice(q) : ''}`;
  };

  app.get(page, async (request, reply) => {
    // With fastify's ignoreTrailingSlash, `<path>/` lands here: its relative references would
    // resolve one level too deep, so send it to `<path>` (a relative Location survives a proxy prefix).
    if (path !== '' && request.url.split('?')[0].endsWith('/')) return reply.redirect(toPage(request.url), 301);
    securityHeaders(reply)
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-cache');
    return html;
  });
  if (path !== '' && !app.hasRoute({ method: 'GET', url: `${path}/` })) {
    app.get(`${path}/`, async (request, reply) => reply.redirect(toPage(request.url), 301));
  }

  app.get(`${path}/parley-chat.js`, async (_request, reply) => {
    securityHeaders(reply)
      .header('content-type', 'text/javascript; charset=utf-8')
      .header('cache-control', 'no-cache');
    return BOOT_JS;
  });

  app.register(fastifyStatic, {
    root: converseDistDir(),
    prefix: `${path}/dist/`,
    decorateReply: false,
    index: false,
    list: false,
    dotfiles: 'deny',
    // Revalidated by ETag on each load (max-age=0): the names do not change between Converse versions.
    setHeaders(reply) {
      reply.header('x-content-type-options', 'nosniff');
    },
  });
}
