import { randomBytes } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import fastifyCors from '@fastify/cors';
import {
  JID,
  NS,
  StreamError,
  XmlStreamParser,
  escapeAttr,
  type StreamHeader,
  type XmlAttrs,
  type XmlElement,
  type XmlStreamLimits,
} from '@parley/xmpp';
import type { ParleyConfig } from '../config/index.ts';
import type { Logger } from '../core/logger.ts';
import type { StreamOpen, StreamReceiver, StreamTransport } from './transport.ts';

/** The highest BOSH version implemented (XEP-0124 1.11.2), sent as 'ver' (XEP-0124 §7.2). */
const BOSH_VERSION = { major: 1, minor: 11 };

/**
 * The shortest polling interval a client may use, in seconds: the 'polling' attribute of the
 * session creation response (XEP-0124 §7.2), enforced for polling sessions (§12).
 */
const POLLING_S = 2;

/** The Content-Type of every response unless the client asked for another (XEP-0124 §7.1 'content'). */
const CONTENT_TYPE = 'text/xml; charset=utf-8';

/** A media type with parameters, as a client may ask for in 'content' (XEP-0124 §7.1); anything else is ignored. */
const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+(;[ ]*[a-z0-9!#$&^_.+-]+=[a-z0-9!#$&^_.+-]+)*$/i;

/** Largest 'rid' a client may use: 2^53 - 1 (XEP-0124 §14.1). */
const MAX_RID = Number.MAX_SAFE_INTEGER;

/** Terminal binding conditions (XEP-0124 §17.2). */
export type BoshCondition =
  | 'bad-request'
  | 'host-gone'
  | 'host-unknown'
  | 'improper-addressing'
  | 'internal-server-error'
  | 'item-not-found'
  | 'other-request'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'remote-stream-error'
  | 'see-other-uri'
  | 'system-shutdown'
  | 'undefined-condition';

/**
 * The legacy HTTP status that replaces a terminal binding condition for a client that sent
 * no 'ver' in its session creation request (XEP-0124 §17.1, the conditions marked * in §17.2).
 */
const LEGACY_STATUS: Partial<Record<BoshCondition, number>> = {
  'bad-request': 400,
  'policy-violation': 403,
  'item-not-found': 404,
};

/** What one HTTP request is answered with. */
interface Answer {
  status: number;
  body: string;
  /** Defaults to `text/xml; charset=utf-8`. */
  contentType?: string;
}

/** An HTTP request of a session waiting for its answer. */
interface Exchange {
  rid: number;
  resolve: (answer: Answer) => void;
  timer: NodeJS.Timeout | undefined;
  /** An empty request of a polling session (XEP-0124 §12). */
  poll?: boolean;
}

/** A request received ahead of its turn (XEP-0124 §14.2), kept until the 'rid's before it arrive. */
interface Early {
  request: BoshRequest;
  exchange: Exchange;
}

/** A parsed `<body/>` wrapper (XEP-0124 §6). */
export interface BoshRequest {
  /** The wrapper's attributes as on the wire: prefixed names keep their prefix, with the `xmlns:<prefix>` declarations. */
  attrs: XmlAttrs;
  rid: number;
  /** The payloads (XEP-0124 §6), in order; unqualified stanzas are moved to `jabber:client` (XEP-0206 §2). */
  payloads: XmlElement[];
}

/** The result of parsing an HTTP request body. */
interface ParsedBody {
  /** The root element, when one was read. */
  root: StreamHeader | null;
  payloads: XmlElement[];
  /** Not well-formed, restricted XML, over a limit, or incomplete. */
  error: StreamError | null;
}

/**
 * Parses one HTTP request body as a `<body/>` wrapper with the stream parser, so the same
 * rules hold as on a TCP stream: restricted XML (XEP-0124 §6: no comments, PIs, DTDs or
 * entity references beyond the predefined ones), UTF-8, and the per-stanza size, depth and
 * attribute limits. The root is reported even when the content fails to parse.
 */
export function parseBoshBody(data: Uint8Array | string, limits: XmlStreamLimits): ParsedBody {
  const result: ParsedBody = { root: null, payloads: [], error: null };
  let ended = false;
  const parser = new XmlStreamParser(
    {
      streamStart: (h) => {
        result.root = h;
      },
      stanza: (el) => {
        result.payloads.push(el);
      },
      streamEnd: () => {
        ended = true;
      },
      streamError: (err) => {
        result.error ??= err;
      },
    },
    limits,
  );
  parser.feed(data);
  if (!result.error && !ended) result.error = new StreamError('not-well-formed', 'the body is not a complete <body/> element');
  return result;
}

/** The value of an attribute in namespace `ns` (e.g. `xmpp:version` in `urn:xmpp:xbosh`, XEP-0206 §3) whatever its prefix. */
function nsAttr(attrs: XmlAttrs, ns: string, local: string): string | undefined {
  for (const k in attrs) {
    const i = k.indexOf(':');
    if (i <= 0 || k.slice(i + 1) !== local) continue;
    const prefix = k.slice(0, i);
    if (prefix === 'xmlns' || prefix === 'xml') continue;
    if (attrs['xmlns:' + prefix] === ns) return attrs[k];
  }
  return undefined;
}

/** A non-negative integer attribute, `undefined` when absent, `null` when malformed. */
function intAttr(v: string | undefined, max = MAX_RID): number | null | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,16}$/.test(v)) return null;
  const n = Number(v);
  return n > max ? null : n;
}

/** XEP-0206 §2: stanzas sent without a namespace are in `jabber:client`, not in the wrapper's namespace. */
function clientNs(el: XmlElement): XmlElement {
  if (el.ns === NS.HTTPBIND) {
    el.ns = NS.CLIENT;
    for (const c of el.children) if (typeof c !== 'string') clientNs(c);
  }
  return el;
}

/** An empty or terminating `<body/>` without session attributes. */
function terminateBody(condition?: BoshCondition): string {
  return `<body type='terminate'${condition ? ` condition='${condition}'` : ''} xmlns='${NS.HTTPBIND}'/>`;
}

const EMPTY_BODY = `<body xmlns='${NS.HTTPBIND}'/>`;
/** XEP-0124 §17.3: a recoverable binding condition; the client resends the requests not yet answered. */
const RECOVERABLE_BODY = `<body type='error' xmlns='${NS.HTTPBIND}'/>`;

/** What the BOSH service needs from the HTTP service. */
export interface BoshContext {
  config: ParleyConfig;
  log: Logger;
  /** Starts a client stream (c2s) on a new transport; it calls {@link StreamTransport.attach} at once. */
  openStream(transport: StreamTransport): void;
  /** The client address and whether the HTTP connection counts as encrypted (see `peerOf` in http/server.ts). */
  peer(request: FastifyRequest): { address: string; secure: boolean };
  /** Whether the request's Origin may use the XMPP endpoints (`originAllowed` with `http.allowed_origins`). */
  originAllowed(request: FastifyRequest): boolean;
}

/** The negotiated parameters of one session (XEP-0124 §7.2), times in ms. */
interface SessionParams {
  sid: string;
  creationRid: number;
  wait: number;
  hold: number;
  inactivity: number;
  maxPause: number;
  /** A polling session: 'hold' or 'wait' 0 (XEP-0124 §12). */
  polling: boolean;
  /** The BOSH version for the response: the lower of ours and the client's (XEP-0124 §7.2). */
  ver: string;
  /** The client sent no 'ver': answer with HTTP error codes (XEP-0124 §17.1). */
  legacy: boolean;
  /** The client announced response acknowledgements (ack='1', XEP-0124 §9.2): we acknowledge requests too (§9.1). */
  acks: boolean;
  contentType: string;
  remoteAddress: string;
  secure: boolean;
  /** The stream header attributes of the first stream: `to`, `xml:lang`, `version`, `from`. */
  header: XmlAttrs;
}

type SessionState = 'open' | 'closing' | 'ended';

/**
 * One BOSH session (XEP-0124) carrying one XMPP client stream (XEP-0206): the
 * {@link StreamTransport} under a c2s stream, made of a series of HTTP requests.
 *
 * - Requests are processed strictly in 'rid' order (XEP-0124 §14.2): one that arrives ahead of
 *   its turn (within the window of `requests` = `hold` + 1 'rid's) is kept until the ones before
 *   it arrive, or answered with a recoverable error (§17.3) after `wait`.
 * - Each processed request is held (§8) until output is ready, answered in 'rid' order; when
 *   more than `hold` are held, the oldest is answered with whatever is queued (maybe nothing);
 *   a held request is answered empty after `wait`. Writes made in one event-loop turn go out in
 *   one response.
 * - The last `requests` responses are kept (fewer once the client acknowledges them, §9.2), so
 *   a repeated 'rid' gets the same response again (§14.3); a repeated 'rid' still held takes
 *   the place of the earlier request, which gets a recoverable error (§14.3, §17.3).
 * - With no request held for `inactivity` (or a requested `pause`, §10) the session ends
 *   silently and the stream above sees its connection close.
 */
export class BoshSession implements StreamTransport {
  readonly framed = true;
  readonly canStartTls = false;
  readonly remoteAddress: string;
  readonly secure: boolean;
  readonly sid: string;
  private readonly p: SessionParams;
  private readonly service: BoshService;
  private receiver: StreamReceiver | null = null;
  private state: SessionState = 'open';
  /** The last 'rid' processed: every request up to it has been received and handed on (§14.2). */
  private lastRid: number;
  /** Requests processed and not yet answered, in 'rid' order. */
  private held: Exchange[] = [];
  /** Requests received ahead of their turn, by 'rid'. */
  private early = new Map<number, Early>();
  /** Sent responses by 'rid', oldest first, for retransmission (§14.3). */
  private sent = new Map<number, string>();
  /** Output not yet in a response. */
  private out: string[] = [];
  private outBytes = 0;
  /** The queued output holds a `stream:` element; the wrapper must declare the prefix (XEP-0206 §2). */
  private outStreamNs = false;
  private flushScheduled = false;
  private inactivityTimer: NodeJS.Timeout | undefined;
  /** The inactivity period now in force: `inactivity`, or a requested pause (§10). */
  private idleLimit: number;
  /** The response waiting for the next request once the stream ended with no request held. */
  private finalBody: string | null = null;
  /** `true` between the stream's restart (after SASL) and the client's restart request (XEP-0206 §5). */
  private restartPending = false;
  /** The stream id (the obsolete 'authid', XEP-0206 §4) and the server's address, from {@link openStream}. */
  private authid = '';
  private serverFrom = '';
  /** Polling sessions (§12): when the last empty request arrived (0 after one with payloads), and whether it was answered empty. */
  private lastPollAt = 0;
  private lastPollEmpty = false;

  /** @internal Made by {@link BoshService} for a valid session creation request. */
  constructor(service: BoshService, params: SessionParams) {
    this.service = service;
    this.p = params;
    this.sid = params.sid;
    this.remoteAddress = params.remoteAddress.replace(/^::ffff:/, '');
    this.secure = params.secure;
    this.lastRid = params.creationRid;
    this.idleLimit = params.inactivity;
  }

  /** Bytes of output not yet handed to an HTTP response (XEP-0124 §8: kept until the client asks). */
  get pendingBytes(): number {
    return this.outBytes;
  }

  /** `true` once the session is over (terminated, expired or shut down). */
  get ended(): boolean {
    return this.state === 'ended';
  }

  /** The response Content-Type of this session (XEP-0124 §7.1). */
  get contentType(): string {
    return this.p.contentType;
  }

  // --- StreamTransport ----------------------------------------------------

  attach(receiver: StreamReceiver): void {
    // The request bodies are parsed by the service with the same limits (config `limits`).
    this.receiver = receiver;
  }

  /** After SASL success (RFC 6120 §6.4.6) the client asks for the new stream with `xmpp:restart` (XEP-0206 §5). */
  restart(): void {
    this.restartPending = true;
  }

  /** The stream header becomes the session attributes of the creation response: 'authid' and 'from' (XEP-0206 §4). */
  openStream(open: StreamOpen): void {
    this.authid = open.id;
    this.serverFrom = open.from;
  }

  /** Queues serialized elements for the next response (XEP-0124 §8); writes in one event-loop turn go out together. */
  write(data: string): void {
    if (this.state !== 'open') return;
    this.out.push(data);
    this.outBytes += Buffer.byteLength(data);
    if (data.startsWith('<stream:')) this.outStreamNs = true;
    if (this.held.length > 0) this.scheduleFlush();
  }

  startTls(): Promise<void> {
    return Promise.reject(new Error('TLS is negotiated at the HTTP layer over BOSH (XEP-0206 §2)'));
  }

  channelBinding(): Buffer | null {
    return null;
  }

  readonly channelBindingAvailable = false;

  /**
   * Ends the session: the oldest held request gets `<body type='terminate'/>` with the output
   * still queued (XEP-0124 §13) — for a stream error, `condition='remote-stream-error'` with
   * the `<stream:error/>` after the stanzas (XEP-0206 §6, XEP-0124 §17.2) — the other held
   * requests an empty body (a terminate body for an error). With no request held, the next
   * request gets it.
   */
  closeStream(error?: StreamError): void {
    if (this.state !== 'open') return;
    let payload = this.takeOutput();
    const streamNs = error !== undefined || this.outStreamNs;
    if (error) payload += error.toXML(true);
    const body =
      `<body type='terminate'${error ? " condition='remote-stream-error'" : ''} xmlns='${NS.HTTPBIND}'` +
      (streamNs ? ` xmlns:stream='${NS.STREAM}'` : '') +
      (payload === '' ? '/>' : `>${payload}</body>`);
    const others = error ? terminateBody('remote-stream-error') : EMPTY_BODY;
    if (this.held.length === 0 && this.early.size === 0) {
      // Nobody to tell now: the next request (if one comes before the inactivity period ends) gets it.
      this.state = 'closing';
      this.finalBody = body;
      this.service.log.debug({ sid: this.sid }, 'bosh: stream closed, waiting for a request to report it');
      this.startIdle();
      return;
    }
    let first = true;
    for (const ex of this.takeAll()) {
      this.answer(ex, { status: 200, body: first ? body : others });
      first = false;
    }
    this.end();
  }

  /** Flushes the queued output and ends the session with a plain terminate body. */
  close(): void {
    this.closeStream();
  }

  // --- Requests -------------------------------------------------------------

  /** @internal The session creation request (XEP-0124 §7.1, XEP-0206 §3): starts the stream. */
  start(exchange: Exchange): void {
    this.hold(exchange);
    this.receiver?.activity();
    this.receiver?.streamStart(this.streamHeader(this.p.header));
    if (this.state === 'open') this.scheduleFlush();
  }

  /** @internal A request with this session's 'sid' (XEP-0124 §8). */
  handle(request: BoshRequest, exchange: Exchange): void {
    if (this.state === 'ended') return this.answer(exchange, this.errorAnswer('item-not-found'));
    if (this.state === 'closing') {
      this.answer(exchange, { status: 200, body: this.finalBody ?? terminateBody() });
      return this.end();
    }
    const rid = request.rid;
    // §14.3: a request received before — answered: the same response again.
    const copy = this.sent.get(rid);
    if (copy !== undefined) {
      this.answer(exchange, { status: 200, body: copy });
      // A sign of life: the inactivity period starts again.
      this.stopIdle();
      return this.startIdle();
    }
    // §14.3: received and not answered yet: the earlier request gets a recoverable error, this one its answer.
    const i = this.held.findIndex((h) => h.rid === rid);
    if (i >= 0) {
      const old = this.held[i]!;
      const resolve = old.resolve;
      old.resolve = exchange.resolve;
      resolve({ status: 200, body: RECOVERABLE_BODY });
      return;
    }
    const e = this.early.get(rid);
    if (e) {
      const resolve = e.exchange.resolve;
      e.exchange.resolve = exchange.resolve;
      resolve({ status: 200, body: RECOVERABLE_BODY });
      return;
    }
    const type = request.attrs.type;
    // §11: one request more than 'requests' is allowed to pause or terminate the session.
    const extra = type === 'terminate' || request.attrs.pause !== undefined ? 1 : 0;
    const requests = this.p.hold + 1;
    if (rid <= this.lastRid || rid > this.lastRid + requests + extra) {
      // §14.2 (beyond the window), §14.3 (no longer buffered): the same error either way.
      return this.fail('item-not-found', exchange, `rid ${rid} is outside the window after ${this.lastRid}`);
    }
    if (this.held.length + this.early.size + 1 > requests + extra) {
      // §11: more simultaneous requests than 'requests'.
      return this.fail('policy-violation', exchange, 'too many simultaneous requests');
    }
    this.stopIdle();
    if (rid !== this.lastRid + 1) {
      // §14.2: ahead of its turn; processed once the ones before it are.
      exchange.timer = setTimeout(() => this.expireEarly(rid), this.p.wait);
      exchange.timer.unref();
      this.early.set(rid, { request, exchange });
      return;
    }
    this.process(request, exchange);
    for (;;) {
      const next = this.early.get(this.lastRid + 1);
      if (!next || this.state !== 'open') break;
      this.early.delete(this.lastRid + 1);
      clearTimeout(next.exchange.timer);
      next.exchange.timer = undefined;
      this.process(next.request, next.exchange);
    }
    this.startIdle();
  }

  /** One request in its turn: its payloads to the stream, then held (§8), or a restart, pause or terminate. */
  private process(request: BoshRequest, exchange: Exchange): void {
    const a = request.attrs;
    this.lastRid = request.rid;
    this.idleLimit = this.p.inactivity; // §10: back to normal after a pause.
    this.receiver?.activity();
    const ack = intAttr(a.ack);
    if (ack !== undefined && ack !== null) {
      // §9.2: responses the client acknowledges are no longer needed for retransmission.
      for (const r of this.sent.keys()) if (r <= ack) this.sent.delete(r);
    }
    if (a.type === 'terminate') {
      // §13: forward the payloads (e.g. unavailable presence), then end the stream.
      this.hold(exchange);
      this.deliver(request.payloads);
      if (this.state === 'open') this.receiver?.streamEnd();
      if (this.state === 'open') this.closeStream();
      return;
    }
    if (nsAttr(a, NS.XBOSH, 'restart') === 'true') {
      // XEP-0206 §5: a new stream; payloads of a restart request are ignored.
      if (!this.restartPending) return this.fail('bad-request', exchange, 'xmpp:restart without a stream restart (XEP-0206 §5)');
      this.restartPending = false;
      this.hold(exchange);
      const header: XmlAttrs = { ...this.p.header };
      if (a.to !== undefined) header.to = a.to;
      if (a['xml:lang'] !== undefined) header['xml:lang'] = a['xml:lang'];
      if (a.from !== undefined) header.from = a.from;
      this.receiver?.streamStart(this.streamHeader(header));
      if (this.state === 'open') this.scheduleFlush();
      return;
    }
    if (a.pause !== undefined) {
      const pause = intAttr(a.pause);
      if (pause === null || pause === undefined) return this.fail('bad-request', exchange, "'pause' is not a number of seconds");
      // §10: answer every held request now (the pause request without payloads, and not kept for
      // retransmission), then allow the requested inactivity, at most 'maxpause'.
      this.deliver(request.payloads);
      if (this.state !== 'open') return this.answer(exchange, { status: 200, body: terminateBody() });
      while (this.held.length > 0) this.respondOldest();
      this.answer(exchange, { status: 200, body: EMPTY_BODY });
      this.idleLimit = Math.min(pause * 1000, this.p.maxPause);
      return;
    }
    if (this.p.polling) {
      // §12: two consecutive empty requests closer together than 'polling', the first one answered empty.
      const now = Date.now();
      if (request.payloads.length > 0) this.lastPollAt = 0;
      else {
        if (this.lastPollAt !== 0 && this.lastPollEmpty && now - this.lastPollAt < POLLING_S * 1000) {
          return this.fail('policy-violation', exchange, 'polling too frequently');
        }
        this.lastPollAt = now;
        this.lastPollEmpty = false;
        exchange.poll = true;
      }
    }
    this.hold(exchange);
    this.deliver(request.payloads);
    if (this.state === 'open' && (this.out.length > 0 || this.held.length > this.p.hold)) this.scheduleFlush();
  }

  private deliver(payloads: XmlElement[]): void {
    for (const el of payloads) {
      if (this.state !== 'open' || !this.receiver) return;
      this.receiver.stanza(el);
    }
  }

  /** The stream header c2s expects from a framed transport: an RFC 7395 `<open/>` with the session's attributes. */
  private streamHeader(attrs: XmlAttrs): StreamHeader {
    return { name: 'open', ns: NS.FRAMING, prefix: '', contentNs: NS.CLIENT, attrs: { ...attrs } };
  }

  private hold(exchange: Exchange): void {
    this.held.push(exchange);
    // §8: never longer than 'wait'.
    exchange.timer = setTimeout(() => this.expireHeld(exchange), this.p.wait);
    exchange.timer.unref();
  }

  /** `wait` is over for a held request: it and the ones before it are answered (in 'rid' order). */
  private expireHeld(exchange: Exchange): void {
    if (this.state !== 'open') return;
    while (this.held.includes(exchange)) this.respondOldest();
    this.startIdle();
  }

  /** `wait` is over for a request whose predecessors never came: a recoverable error (§17.3), the client resends. */
  private expireEarly(rid: number): void {
    const e = this.early.get(rid);
    if (!e) return;
    this.early.delete(rid);
    this.answer(e.exchange, { status: 200, body: RECOVERABLE_BODY });
    this.startIdle();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Answers what can be answered: beyond `hold` the oldest held requests, then the oldest one with queued output. */
  private flush(): void {
    if (this.state !== 'open') return;
    while (this.held.length > this.p.hold) this.respondOldest();
    if (this.out.length > 0 && this.held.length > 0) this.respondOldest();
    this.startIdle();
  }

  /** Answers the oldest held request with all queued output and keeps the response for retransmission. */
  private respondOldest(): void {
    const ex = this.held.shift()!;
    const streamNs = this.outStreamNs;
    const payload = this.takeOutput();
    const body = this.body(ex.rid, payload, streamNs);
    this.sent.set(ex.rid, body);
    // §14.3: as many responses as simultaneous requests are allowed.
    for (const r of this.sent.keys()) {
      if (this.sent.size <= this.p.hold + 1) break;
      this.sent.delete(r);
    }
    if (ex.poll) this.lastPollEmpty = payload === '';
    this.answer(ex, { status: 200, body });
  }

  /** A response `<body/>`: with the session attributes for the creation request (XEP-0124 §7.2, XEP-0206 §4). */
  private body(rid: number, payload: string, streamNs: boolean): string {
    let s = `<body xmlns='${NS.HTTPBIND}'`;
    const p = this.p;
    if (rid === p.creationRid) {
      s +=
        ` sid='${p.sid}' wait='${Math.floor(p.wait / 1000)}' inactivity='${Math.ceil(p.inactivity / 1000)}'` +
        ` polling='${POLLING_S}' requests='${p.hold + 1}' hold='${p.hold}' maxpause='${Math.floor(p.maxPause / 1000)}'` +
        ` ver='${p.ver}' from='${escapeAttr(this.serverFrom)}' authid='${escapeAttr(this.authid)}'` +
        (p.acks ? ` ack='${rid}'` : '') +
        ` xmpp:version='1.0' xmpp:restartlogic='true' xmlns:xmpp='${NS.XBOSH}' xmlns:stream='${NS.STREAM}'`;
    } else {
      if (streamNs) s += ` xmlns:stream='${NS.STREAM}'`;
      // §9.1: acknowledge the highest 'rid' received in order, when it is not this request's.
      if (p.acks && this.lastRid !== rid) s += ` ack='${this.lastRid}'`;
    }
    return payload === '' ? s + '/>' : s + '>' + payload + '</body>';
  }

  private takeOutput(): string {
    const s = this.out.length === 1 ? this.out[0]! : this.out.join('');
    this.out = [];
    this.outBytes = 0;
    this.outStreamNs = false;
    return s;
  }

  /** Every request waiting for an answer, held then early, in 'rid' order; their timers stopped. */
  private takeAll(): Exchange[] {
    const all = [...this.held, ...[...this.early.values()].sort((x, y) => x.request.rid - y.request.rid).map((e) => e.exchange)];
    this.held = [];
    this.early.clear();
    for (const ex of all) clearTimeout(ex.timer);
    return all;
  }

  private answer(exchange: Exchange, answer: Answer): void {
    clearTimeout(exchange.timer);
    exchange.timer = undefined;
    exchange.resolve(answer);
  }

  /** A terminal binding condition (§17.2), or its legacy HTTP status (§17.1). */
  private errorAnswer(condition: BoshCondition): Answer {
    const status = this.p.legacy ? (LEGACY_STATUS[condition] ?? 200) : 200;
    return { status, body: terminateBody(condition) };
  }

  /** Terminates the session with a binding error (XEP-0124 §17.2): this request and every waiting one get it. */
  fail(condition: BoshCondition, exchange: Exchange | null, reason: string): void {
    if (this.state === 'ended') return;
    this.service.log.debug({ sid: this.sid, condition, reason }, 'bosh: session terminated');
    const answer = this.errorAnswer(condition);
    for (const ex of this.takeAll()) this.answer(ex, answer);
    if (exchange) this.answer(exchange, answer);
    this.end();
  }

  /** Starts the inactivity period (§10) once every request has been answered. */
  private startIdle(): void {
    if (this.state === 'ended' || this.held.length > 0 || this.early.size > 0 || this.inactivityTimer) return;
    this.inactivityTimer = setTimeout(() => {
      this.inactivityTimer = undefined;
      if (this.state === 'open') this.service.log.debug({ sid: this.sid }, 'bosh: session inactive, ending it');
      this.end();
    }, this.idleLimit);
    this.inactivityTimer.unref();
  }

  private stopIdle(): void {
    clearTimeout(this.inactivityTimer);
    this.inactivityTimer = undefined;
  }

  /** The session is over: forgotten by the service, its timers stopped, the stream above told (once). */
  private end(): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.stopIdle();
    for (const ex of this.takeAll()) this.answer(ex, { status: 200, body: terminateBody() });
    this.out = [];
    this.outBytes = 0;
    this.sent.clear();
    this.finalBody = null;
    this.service.forget(this);
    this.receiver?.transportClosed();
  }

  /** @internal Server shutdown: every waiting request gets `system-shutdown` (XEP-0124 §17.2). */
  shutdown(): void {
    if (this.state === 'ended') return;
    const body = terminateBody('system-shutdown');
    for (const ex of this.takeAll()) this.answer(ex, { status: 200, body });
    this.end();
  }
}

/**
 * The BOSH connection manager (XEP-0124, XEP-0206) at `http.bosh.path`: one for the
 * server, shared by every HTTP(S) listener, holding the sessions by 'sid'.
 *
 * Errors are HTTP 200 with a terminal binding condition (XEP-0124 §17.2) —
 * `bad-request` for a body that is not a well-formed `<body/>` in the httpbind namespace or
 * lacks a valid 'rid', `item-not-found` for an unknown or ended 'sid' or a 'rid' outside the
 * window, `host-unknown` for a 'to' this server does not serve, `improper-addressing` for no
 * 'to', `policy-violation` for too many simultaneous requests, too frequent polling or a body
 * over the size limit — or the legacy HTTP status (400, 403, 404) for a client that sent no
 * 'ver' (§17.1). CORS (for browser pages on other origins) follows `http.allowed_origins`.
 */
export class BoshService {
  private readonly ctx: BoshContext;
  private readonly sessions = new Map<string, BoshSession>();
  private readonly limits: XmlStreamLimits;
  private closed = false;

  constructor(ctx: BoshContext) {
    this.ctx = ctx;
    const l = ctx.config.limits;
    this.limits = { maxStanzaSize: l.max_stanza_size, maxDepth: l.max_depth, maxAttributes: l.max_attributes };
  }

  /** @internal */
  get log(): Logger {
    return this.ctx.log;
  }

  /** Number of live sessions. */
  get size(): number {
    return this.sessions.size;
  }

  /**
   * The largest request body accepted, in bytes: room for one stanza of the largest size
   * (`limits.max_stanza_size`) with others and the wrapper. Larger → `policy-violation`.
   */
  get bodyLimit(): number {
    return 2 * this.limits.maxStanzaSize + 16384;
  }

  /**
   * Adds the BOSH endpoint to one fastify app, in a plugin of its own: POST for the
   * requests (any Content-Type, XEP-0124 §5 says to ignore it), OPTIONS for CORS preflight.
   */
  async register(app: FastifyInstance): Promise<void> {
    const bodyLimit = this.bodyLimit;
    const path = this.ctx.config.http.bosh.path;
    await app.register(
      async (scope) => {
        await scope.register(fastifyCors, {
          hook: 'onRequest',
          delegator: (request, cb) => {
            const origin = request.headers.origin;
            // The plugin's preflight route is a wildcard under the prefix ('/http-bind*'): only the endpoint itself answers.
            const url = request.url.split('?', 1)[0]!;
            const endpoint = url === path || url === path + '/';
            // No Origin: not a browser, no CORS headers needed. A refused origin gets none either.
            cb(null, {
              origin: endpoint && origin !== undefined && this.ctx.originAllowed(request) ? origin : false,
              methods: ['POST', 'OPTIONS'],
              maxAge: 86400,
            });
          },
        });
        // XEP-0124 §5: clients may send text/xml, text/plain, form types or none; the body is XML whatever it says.
        scope.removeAllContentTypeParsers();
        scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => done(null, body));
        scope.setErrorHandler((err: FastifyError, _request, reply) => {
          const status = err.statusCode ?? 500;
          const condition: BoshCondition = status === 413 ? 'policy-violation' : status < 500 ? 'bad-request' : 'internal-server-error';
          if (status >= 500) this.ctx.log.error({ err }, 'bosh: request failed');
          void reply.code(200).header('cache-control', 'no-store').type(CONTENT_TYPE).send(terminateBody(condition));
        });
        scope.post('/', { bodyLimit }, async (request, reply) => {
          const answer = await this.request(request);
          if (answer === null) {
            // XEP-0124 §19.1: a secure session's request on an unencrypted connection: close it, keep the session.
            reply.hijack();
            request.raw.socket.destroy();
            return;
          }
          return reply
            .code(answer.status)
            .header('cache-control', 'no-store')
            .type(answer.contentType ?? CONTENT_TYPE)
            .send(answer.body);
        });
      },
      { prefix: path },
    );
  }

  /** Answers one BOSH request; `null` when the connection is to be closed without an answer. */
  private async request(request: FastifyRequest): Promise<Answer | null> {
    if (!this.ctx.originAllowed(request)) {
      return { status: 403, contentType: 'text/plain; charset=utf-8', body: 'this origin may not connect (http.allowed_origins)' };
    }
    const data = request.body;
    if (!(data instanceof Buffer) || data.length === 0) return bindingError('bad-request');
    const parsed = parseBoshBody(data, this.limits);
    const root = parsed.root;
    const sid = root?.attrs.sid;
    const session = sid === undefined ? undefined : this.sessions.get(sid);
    const bad = (condition: BoshCondition, reason: string): Answer => {
      // The request carried this session's 'sid' and we answer 'terminate': the session is over.
      session?.fail(condition, null, reason);
      return bindingError(condition, session?.contentType);
    };
    if (parsed.error || !root) {
      return bad(parsed.error?.condition === 'policy-violation' ? 'policy-violation' : 'bad-request', parsed.error?.message ?? 'no body');
    }
    if (root.name !== 'body' || root.ns !== NS.HTTPBIND) return bad('bad-request', `<${root.name}/> in '${root.ns}' is not a BOSH <body/>`);
    const rid = intAttr(root.attrs.rid);
    if (rid === undefined || rid === null) return bad('bad-request', "missing or malformed 'rid'");
    const req: BoshRequest = { attrs: root.attrs, rid, payloads: parsed.payloads.map(clientNs) };
    if (sid === undefined) return this.create(request, req);
    if (!session || session.ended) return bindingError('item-not-found');
    if (session.secure && !this.ctx.peer(request).secure) return null;
    return new Promise<Answer>((resolve) => {
      session.handle(req, { rid, resolve: (a) => resolve({ contentType: session.contentType, ...a }), timer: undefined });
    });
  }

  /** XEP-0124 §7, XEP-0206 §3–4: a new session and its c2s stream; answered once the stream features are written. */
  private create(request: FastifyRequest, req: BoshRequest): Promise<Answer> | Answer {
    const a = req.attrs;
    const b = this.ctx.config.http.bosh;
    const legacy = a.ver === undefined;
    const fail = (condition: BoshCondition): Answer => {
      const answer = bindingError(condition);
      return legacy ? { ...answer, status: LEGACY_STATUS[condition] ?? 200 } : answer;
    };
    if (this.closed) return fail('system-shutdown');
    // §17.2: 'to' names the domain; this connection manager serves this server's domain only ('route' is ignored, §7.1).
    if (a.to === undefined || a.to === '') return fail('improper-addressing');
    const to = JID.tryParse(a.to);
    if (!to || to.domain !== this.ctx.config.domain || to.local !== '' || to.resource !== '') return fail('host-unknown');
    const wait = intAttr(a.wait);
    const hold = intAttr(a.hold);
    if (wait === null || hold === null) return fail('bad-request');
    const ver = parseVer(a.ver);
    const content = a.content !== undefined && MEDIA_TYPE.test(a.content) ? a.content : CONTENT_TYPE;
    // §7.2: 'wait' and 'hold' no more than requested, and no more than configured.
    const waitMs = Math.min(wait === undefined ? b.max_wait : wait * 1000, b.max_wait);
    const holdN = Math.min(hold ?? 1, b.max_hold);
    const polling = waitMs === 0 || holdN === 0;
    // §12: a polling session gets a longer inactivity period than the polling interval.
    const inactivity = polling ? Math.max(b.max_inactivity, 2 * POLLING_S * 1000) : b.max_inactivity;
    const peer = this.ctx.peer(request);
    const header: XmlAttrs = {
      to: a.to,
      // XEP-0206 §3: the XMPP version of the stream; a client that omits it is taken to speak 1.0.
      version: nsAttr(a, NS.XBOSH, 'version') ?? '1.0',
    };
    if (a['xml:lang'] !== undefined) header['xml:lang'] = a['xml:lang'];
    if (a.from !== undefined) header.from = a.from;
    let sid: string;
    do sid = randomBytes(18).toString('base64url'); // §19.3: unpredictable.
    while (this.sessions.has(sid));
    const session = new BoshSession(this, {
      sid,
      creationRid: req.rid,
      wait: waitMs,
      hold: holdN,
      inactivity,
      maxPause: b.max_pause,
      polling,
      ver: ver === null || compareVer(ver, BOSH_VERSION) > 0 ? `${BOSH_VERSION.major}.${BOSH_VERSION.minor}` : `${ver.major}.${ver.minor}`,
      legacy,
      acks: a.ack !== undefined,
      contentType: content,
      remoteAddress: peer.address,
      secure: peer.secure,
      header,
    });
    this.sessions.set(sid, session);
    this.ctx.log.debug({ sid, ip: session.remoteAddress, secure: peer.secure, wait: waitMs, hold: holdN }, 'bosh: session created');
    try {
      this.ctx.openStream(session);
    } catch (err) {
      this.ctx.log.error({ err }, 'bosh: could not start the stream');
      session.fail('internal-server-error', null, 'stream start failed');
      return bindingError('internal-server-error');
    }
    return new Promise<Answer>((resolve) => {
      session.start({ rid: req.rid, resolve: (ans) => resolve({ contentType: content, ...ans }), timer: undefined });
    });
  }

  /** @internal A session ended. */
  forget(session: BoshSession): void {
    if (this.sessions.get(session.sid) === session) this.sessions.delete(session.sid);
  }

  /**
   * Ends every session: their waiting requests are answered with `system-shutdown` (XEP-0124
   * §17.2) and their streams told; no timers are left. New sessions are refused from now on.
   */
  close(): void {
    this.closed = true;
    for (const s of [...this.sessions.values()]) s.shutdown();
    this.sessions.clear();
  }
}

function bindingError(condition: BoshCondition, contentType?: string): Answer {
  return { status: 200, body: terminateBody(condition), contentType };
}

/** 'ver' as (major, minor), each a separate integer (XEP-0124 §7.1); `null` when absent or malformed. */
function parseVer(v: string | undefined): { major: number; minor: number } | null {
  const m = v === undefined ? null : /^(\d{1,6})\.(\d{1,6})$/.exec(v);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : null;
}

function compareVer(a: { major: number; minor: number }, b: { major: number; minor: number }): number {
  return a.major !== b.major ? a.major - b.major : a.minor - b.minor;
}
