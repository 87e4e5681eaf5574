import {
  JID,
  NS,
  SCRAM_MECHANISMS,
  SaslError,
  ScramServer,
  StanzaError,
  StreamError,
  errorReply,
  escapeAttr,
  parsePlain,
  randomToken,
  xml,
  type SaslCondition,
  type StreamHeader,
  type XmlElement,
} from '@parley/xmpp';
import type { StreamReceiver, StreamTransport } from '../transports/transport.ts';
import type { Session } from '../core/session.ts';
import type { Router } from '../core/router.ts';
import type { Hooks } from '../core/hooks.ts';
import type { SessionManager } from '../core/session.ts';
import type { AccountService } from '../core/accounts.ts';
import type { AuthThrottle } from '../core/auth-throttle.ts';
import type { Logger } from '../core/logger.ts';
import type { StreamFeatureProvider } from './features.ts';

/** What a client stream needs from the server. */
export interface C2SContext {
  domain: string;
  router: Router;
  hooks: Hooks;
  sessions: SessionManager;
  accounts: AccountService;
  throttle: AuthThrottle;
  log: Logger;
  streamFeatures: StreamFeatureProvider[];
  /** Every open client stream, for shutdown. */
  streams: Set<C2SStream>;
  options: {
    requireEncryption: boolean;
    allowPlainWithoutTls: boolean;
    /** Enabled SASL mechanisms in preference order. */
    mechanisms: string[];
    /** Time allowed from connect to resource binding, ms. */
    authTimeout: number;
    maxStanzaSize: number;
    maxDepth: number;
    maxAttributes: number;
    /** Bytes queued for a client that does not read, beyond which the stream is closed. */
    maxOutputQueue: number;
    scramIterations: number;
  };
}

/** The serialized fixed features, by the options object and a bit set of the connection's state (C2SStream.fixedFeatures). */
const FIXED_FEATURES = new WeakMap<C2SContext['options'], Map<number, string>>();

type Phase = 'connected' | 'open' | 'closing' | 'closed';

/** An unauthenticated client stream, as pre-auth handlers see it. */
export interface PreAuthStream {
  readonly remoteAddress: string;
  readonly secure: boolean;
  /** Sends a stanza on the stream (no 'from' stamping: the client has no address yet). */
  send(stanza: XmlElement): void;
  close(error?: StreamError): void;
  /** `true` when a SASL authentication attempt on this stream has failed (XEP-0078 §3 then asks for `policy-violation`). */
  readonly saslFailed: boolean;
  /**
   * Non-SASL authentication (XEP-0078 §3, `jabber:iq:auth`): checks `password` for
   * `username` and, when right, authenticates the stream AND binds `resource` in one step —
   * there is no stream restart and no RFC 6120 §7 bind. On success `result` (the iq result
   * the module built) is sent first, then the session starts (`session/started`); a session
   * with the same full JID is replaced (`conflict` stream error to it), the behaviour
   * XEP-0078 §3 recommends. Resolves with the error to answer otherwise: `not-authorized`
   * for an unknown account or a wrong password (after the same per-address delay as a
   * failed SASL attempt, and counted towards the same limit of attempts), `not-acceptable`
   * for a resource that is not a valid resourcepart (RFC 7622 §3.4), `not-authorized` on an
   * unencrypted stream unless `auth.allow_plain_without_tls`, `unexpected-request` while
   * another attempt is running or once authenticated. After a failed SASL attempt the stream
   * is closed with `policy-violation` (XEP-0078 §3, §7).
   */
  legacyLogin(username: string, password: string, resource: string, result: XmlElement): Promise<{ ok: true } | { error: StanzaError }>;
}

/**
 * Payload of `preauth/iq/<ns>` hooks: an iq get/set received before authentication
 * (RFC 6120 §6 still applies: only TLS-protected streams when encryption is required).
 * c2s has already checked it: it has an id, exactly one payload (in `<ns>`), and is
 * addressed to the server or has no 'to'.
 */
export interface PreAuthEvent {
  stanza: XmlElement;
  stream: PreAuthStream;
}

const MAX_AUTH_ATTEMPTS = 5;

/**
 * One client-to-server stream (RFC 6120): header exchange (§4.2–4.7), STARTTLS
 * (§5), SASL (§6), resource binding (§7), then stanzas to the router. Once bound
 * it is a {@link Session}.
 */
export class C2SStream implements Session, StreamReceiver {
  id = '';
  jid!: JID;
  priority = 0;
  presence: XmlElement | null = null;
  lastActivity = Date.now();
  readonly remoteAddress: string;
  private _data: Map<string, unknown> | undefined;

  private ctx: C2SContext;
  private transport: StreamTransport;
  private phase: Phase = 'connected';
  private headerSent = false;
  private authenticated = false;
  private username = '';
  private bound = false;
  private fullJidString = '';
  private sasl: ScramServer | 'PLAIN' | null = null;
  private saslBusy = false;
  private authFailures = 0;
  private saslFailed = false;
  private authTimer: NodeJS.Timeout | undefined;
  /** Stanzas waiting behind an asynchronous `stanza/in` filter, or `null`. */
  private inQueue: XmlElement[] | null = null;
  private log: Logger;

  constructor(transport: StreamTransport, ctx: C2SContext) {
    this.ctx = ctx;
    this.transport = transport;
    this.remoteAddress = transport.remoteAddress;
    this.log = ctx.log;
    const o = ctx.options;
    ctx.streams.add(this);
    transport.attach(this, {
      maxStanzaSize: o.maxStanzaSize,
      maxDepth: o.maxDepth,
      maxAttributes: o.maxAttributes,
    });
    this.authTimer = setTimeout(() => {
      if (!this.bound) this.close(new StreamError('connection-timeout', 'authentication took too long'));
    }, o.authTimeout);
    this.authTimer.unref();
  }

  get secure(): boolean {
    return this.transport.secure;
  }

  get data(): Map<string, unknown> {
    return (this._data ??= new Map());
  }

  /** `true` once a resource is bound. */
  get isBound(): boolean {
    return this.bound;
  }

  // --- StreamReceiver ---------------------------------------------------

  /** @internal */
  activity(): void {
    this.lastActivity = Date.now();
  }

  transportClosed(): void {
    this.teardown();
  }

  /** @internal RFC 6120 §4.7: validate the initiating stream header, answer with ours and the features. */
  streamStart(h: StreamHeader): void {
    this.id = randomToken(12, 'base64url');
    // RFC 6120 §4.9.1.2: an error before our header still needs our header first.
    const to = h.attrs.to;
    const from = h.attrs.from;
    const fromJid = from === undefined ? null : JID.tryParse(from);
    this.transport.openStream({ from: this.ctx.domain, id: this.id, to: fromJid?.toString() });
    this.headerSent = true;
    this.phase = 'open';
    // A framed transport's header is its own <open/> (RFC 7395 §3.3.2; BOSH's session request),
    // which only its parser produces; the root element is checked on TCP streams alone.
    if (!this.transport.framed) {
      if (h.ns !== NS.STREAM || h.name !== 'stream') {
        return this.close(new StreamError('invalid-namespace', `the stream element must be <stream> in ${NS.STREAM}`));
      }
      if (h.prefix !== 'stream') {
        return this.close(new StreamError('bad-namespace-prefix', "the stream element must use the 'stream' prefix"));
      }
    }
    if (h.contentNs !== NS.CLIENT) {
      return this.close(new StreamError('invalid-namespace', `the content namespace must be ${NS.CLIENT}`));
    }
    const version = h.attrs.version;
    if (version === undefined || !/^\d+\.\d+$/.test(version) || Number(version.split('.')[0]) !== 1) {
      // RFC 6120 §4.7.5: we speak 1.x only.
      return this.close(new StreamError('unsupported-version', `version '${version ?? ''}' is not supported; use 1.0`));
    }
    if (to === undefined) return this.close(new StreamError('host-unknown', "the stream header has no 'to'"));
    const toJid = JID.tryParse(to);
    if (!toJid || toJid.domain !== this.ctx.domain || toJid.local !== '' || toJid.resource !== '') {
      return this.close(new StreamError('host-unknown', `this server does not serve '${to}'`));
    }
    if (from !== undefined) {
      const j = JID.tryParse(from);
      if (!j) return this.close(new StreamError('invalid-from', `'${from}' is not a valid JID`));
      if (this.authenticated && j.bareString() !== `${this.username}@${this.ctx.domain}`) {
        return this.close(new StreamError('invalid-from', "'from' does not match the authenticated account"));
      }
    }
    this.sendFeatures();
  }

  /** @internal */
  streamEnd(): void {
    // The client closed its stream (RFC 6120 §4.4): close ours.
    this.close();
  }

  /** @internal */
  streamError(err: StreamError): void {
    this.close(err);
  }

  /** @internal One first-level element of the stream. */
  stanza(el: XmlElement): void {
    if (this.phase !== 'open') return;
    if (!this.authenticated) return this.preAuth(el);
    if (!this.bound) return this.preBind(el);
    this.inbound(el);
  }

  // --- Features ---------------------------------------------------------

  /**
   * `<stream:features/>` (RFC 6120 §4.3.2): before authentication STARTTLS (§5.3.1), the SASL
   * mechanisms (§6.3.3) and XEP-0440's channel-binding types; after it bind (§7.1) and the
   * optional RFC 3921 session; then what modules offer. The fixed part is serialized once
   * per set of options and connection state ({@link fixedFeatures}).
   */
  private sendFeatures(): void {
    const secure = this.transport.secure;
    const authenticated = this.authenticated;
    let body = this.fixedFeatures();
    // Before TLS on a stream that requires it, STARTTLS is all there is to offer.
    if (authenticated || this.negotiable) {
      for (const p of this.ctx.streamFeatures) {
        const el = p.feature({ authenticated, bound: false, secure });
        if (el) body += el.toString(NS.CLIENT);
      }
    }
    // Framed: the element is a document of its own and declares the stream prefix (RFC 7395 §3.3.3).
    const open = this.transport.framed ? `<stream:features xmlns:stream='${NS.STREAM}'` : '<stream:features';
    this.sendRaw(body === '' ? `${open}/>` : `${open}>${body}</stream:features>`);
  }

  /**
   * The features that depend only on the options and on the connection's state (authenticated,
   * TLS, STARTTLS available, channel binding available), serialized once for each: building
   * them as elements for every stream made about 8 KB of garbage per login.
   */
  private fixedFeatures(): string {
    const o = this.ctx.options;
    const t = this.transport;
    const key = (this.authenticated ? 1 : 0) | (t.secure ? 2 : 0) | (t.canStartTls ? 4 : 0) | (t.channelBindingAvailable ? 8 : 0);
    let byState = FIXED_FEATURES.get(o);
    if (byState === undefined) FIXED_FEATURES.set(o, (byState = new Map()));
    let text = byState.get(key);
    if (text !== undefined) return text;
    const parts: XmlElement[] = [];
    if (!this.authenticated) {
      if (!t.secure && t.canStartTls) parts.push(xml('starttls', { xmlns: NS.TLS }, o.requireEncryption ? xml('required') : null));
      if (this.negotiable) {
        parts.push(xml('mechanisms', { xmlns: NS.SASL }, this.mechanisms().map((m) => xml('mechanism', null, m))));
        // XEP-0440 §3: the channel-binding types this connection supports.
        if (t.channelBindingAvailable) parts.push(xml('sasl-channel-binding', { xmlns: NS.SASL_CB }, xml('channel-binding', { type: 'tls-exporter' })));
      }
    } else {
      parts.push(xml('bind', { xmlns: NS.BIND }));
      // The RFC 3921 session feature, optional (draft-cridland-xmpp-session-01).
      parts.push(xml('session', { xmlns: NS.SESSION }, xml('optional')));
    }
    text = parts.map((el) => el.toString(NS.CLIENT)).join('');
    byState.set(key, text);
    return text;
  }

  /** Whether SASL and pre-auth iq may be used on this stream: it is TLS, or TLS is not required (RFC 6120 §5.3.1). */
  private get negotiable(): boolean {
    return this.transport.secure || !this.ctx.options.requireEncryption;
  }

  /** Mechanisms offered on this stream (RFC 6120 §6.3.3): -PLUS only with channel binding, PLAIN only over TLS unless allowed. */
  private mechanisms(): string[] {
    const o = this.ctx.options;
    const secure = this.transport.secure;
    const cb = this.transport.channelBindingAvailable;
    return o.mechanisms.filter((m) => {
      if (m === 'PLAIN') return secure || o.allowPlainWithoutTls;
      const s = SCRAM_MECHANISMS[m];
      if (!s) return false;
      return s.plus ? cb : true;
    });
  }

  // --- Before authentication: STARTTLS and SASL -------------------------

  private preAuth(el: XmlElement): void {
    if (el.ns === NS.TLS && el.name === 'starttls') return this.startTls();
    if (el.ns === NS.SASL) {
      if (!this.negotiable) {
        if (el.name === 'auth') return this.saslFailure('encryption-required', 'negotiate STARTTLS first', false);
        return this.close(new StreamError('policy-violation', 'STARTTLS is required'));
      }
      if (this.saslBusy) return this.close(new StreamError('policy-violation', 'SASL element while the previous one is processed'));
      switch (el.name) {
        case 'auth':
          return void this.saslAuth(el);
        case 'response':
          return void this.saslResponse(el);
        case 'abort':
          this.sasl = null;
          return this.saslFailure('aborted', undefined, false);
      }
    }
    if (el.name === 'iq' && el.ns === NS.CLIENT && this.negotiable) {
      // Modules may serve iq before authentication (in-band registration, XEP-0077 §3.1).
      const payload = el.firstElement();
      const event = payload ? `preauth/iq/${payload.ns}` : '';
      if (payload && this.ctx.hooks.has(event)) {
        // One validation for every pre-auth handler (RFC 6120 §8.2.3): responses are never answered,
        // a request has an id and exactly one payload, and only the server itself answers before authentication.
        const type = el.attrs.type;
        if (type !== 'get' && type !== 'set') return;
        if (el.attrs.id === undefined || el.getChildren().length !== 1) {
          return this.replyError(el, new StanzaError('bad-request', 'an iq get/set has an id and exactly one payload (RFC 6120 §8.2.3)'));
        }
        const to = el.attrs.to === undefined ? null : JID.tryParse(el.attrs.to);
        if (to !== null && !(to?.domain === this.ctx.domain && to.local === '' && to.resource === '')) {
          return this.replyError(el, new StanzaError('service-unavailable', 'before authentication only the server answers'));
        }
        const ev: PreAuthEvent = { stanza: el, stream: this.preAuthView() };
        const r = this.ctx.hooks.fire(event, ev);
        if (r !== true && r !== false) r.catch((err) => this.log.error({ err }, 'c2s: pre-auth handler failed'));
        return;
      }
    }
    // RFC 6120 §4.9.3.12: data before authentication.
    this.close(new StreamError('not-authorized', 'authenticate first'));
  }

  private startTls(): void {
    if (this.transport.secure || !this.transport.canStartTls) {
      // RFC 6120 §5.4.2.2: failure, then close.
      this.sendRaw(`<failure xmlns='${NS.TLS}'/>`);
      return this.close();
    }
    this.sendRaw(`<proceed xmlns='${NS.TLS}'/>`);
    this.transport.restart();
    this.headerSent = false;
    this.transport.startTls().catch((err: Error) => {
      this.log.debug({ err: err.message, ip: this.remoteAddress }, 'c2s: TLS handshake failed');
      this.phase = 'closed';
      this.transport.close();
    });
  }

  private decode(el: XmlElement): Buffer {
    const t = el.text().trim();
    if (t === '=' || t === '') return Buffer.alloc(0);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 !== 0) {
      throw new SaslError('incorrect-encoding', 'the data is not valid base64 (RFC 6120 §6.4.2)');
    }
    return Buffer.from(t, 'base64');
  }

  private async saslAuth(el: XmlElement): Promise<void> {
    const mech = el.attrs.mechanism ?? '';
    if (!this.mechanisms().includes(mech)) {
      return this.saslFailure(
        mech === 'PLAIN' && !this.transport.secure ? 'encryption-required' : 'invalid-mechanism',
        `mechanism '${mech}' is not offered on this stream`,
        false,
      );
    }
    this.saslBusy = true;
    try {
      const initial = el.text().trim() === '' ? null : this.decode(el);
      if (mech === 'PLAIN') {
        this.sasl = 'PLAIN';
        if (initial === null) {
          this.saslBusy = false;
          return this.sendRaw(`<challenge xmlns='${NS.SASL}'/>`);
        }
        return await this.plain(initial);
      }
      const s = SCRAM_MECHANISMS[mech]!;
      const accounts = this.ctx.accounts;
      // Only a -PLUS exchange uses the channel-binding data (RFC 5802 §6): no TLS exporter call for the others.
      const cbData = s.plus ? this.transport.channelBinding() : null;
      const scram = new ScramServer({
        hash: s.hash,
        plus: s.plus,
        channelBinding: cbData ? { type: 'tls-exporter', data: cbData } : null,
        // A client that supports only other channel-binding types (tls-unique: slixmpp 1.8) sends 'y' although
        // we offer -PLUS; refusing it would lock such clients out. XEP-0440 tells capable clients our types.
        serverAdvertisedPlus: false,
        lookup: (username) => accounts.credentials(username, s.hash),
        unknownUserIterations: this.ctx.options.scramIterations,
      });
      this.sasl = scram;
      if (initial === null) {
        this.saslBusy = false;
        return this.sendRaw(`<challenge xmlns='${NS.SASL}'/>`);
      }
      const serverFirst = await scram.start(initial);
      this.sendRaw(`<challenge xmlns='${NS.SASL}'>${serverFirst.toString('base64')}</challenge>`);
    } catch (err) {
      return this.saslError(err);
    } finally {
      this.saslBusy = false;
    }
  }

  private async saslResponse(el: XmlElement): Promise<void> {
    const sasl = this.sasl;
    if (!sasl) return this.saslFailure('malformed-request', 'no authentication exchange in progress', false);
    this.saslBusy = true;
    try {
      const data = this.decode(el);
      if (sasl === 'PLAIN') return await this.plain(data);
      if (sasl.username === '') {
        const serverFirst = await sasl.start(data);
        return this.sendRaw(`<challenge xmlns='${NS.SASL}'>${serverFirst.toString('base64')}</challenge>`);
      }
      const serverFinal = await sasl.finish(data);
      this.checkAuthzid(sasl.authzid, sasl.username);
      this.saslSuccess(sasl.username, serverFinal);
    } catch (err) {
      return this.saslError(err);
    } finally {
      this.saslBusy = false;
    }
  }

  private async plain(data: Buffer): Promise<void> {
    const { authzid, authcid, password } = parsePlain(data);
    let user: string;
    try {
      user = this.ctx.accounts.prepareUsername(authcid);
    } catch {
      throw new SaslError('not-authorized');
    }
    if (!(await this.ctx.accounts.verifyPassword(user, password))) throw new SaslError('not-authorized');
    this.checkAuthzid(authzid === '' ? undefined : authzid, user);
    this.saslSuccess(user, null);
  }

  /** RFC 6120 §6.4.6: an authzid other than the account's own bare JID is refused. */
  private checkAuthzid(authzid: string | undefined, user: string): void {
    if (authzid === undefined) return;
    const j = JID.tryParse(authzid);
    if (!j || j.toString() !== `${user}@${this.ctx.domain}`) {
      throw new SaslError('invalid-authzid', 'you may only authorize as your own account');
    }
  }

  private saslSuccess(user: string, additional: Buffer | null): void {
    if (this.phase !== 'open') return;
    this.ctx.throttle.succeed(this.remoteAddress);
    this.sasl = null;
    this.authenticated = true;
    this.username = user;
    this.sendRaw(`<success xmlns='${NS.SASL}'>${additional ? additional.toString('base64') : ''}</success>`);
    // RFC 6120 §6.4.6: the stream restarts; discard the parser state.
    this.transport.restart();
    this.headerSent = false;
  }

  private saslError(err: unknown): void {
    this.sasl = null;
    if (err instanceof SaslError) return this.saslFailure(err.condition, err.condition === 'not-authorized' ? undefined : err.message, true);
    this.log.error({ err }, 'c2s: SASL failed');
    return this.saslFailure('temporary-auth-failure', undefined, true);
  }

  private saslFailure(condition: SaslCondition, text: string | undefined, counts: boolean): void {
    this.saslFailed = true;
    const body = `<failure xmlns='${NS.SASL}'><${condition}/>${text ? `<text xml:lang='en'>${escapeAttr(text)}</text>` : ''}</failure>`;
    if (!counts) return this.sendRaw(body);
    this.authFailures++;
    const delay = this.ctx.throttle.fail(this.remoteAddress);
    this.saslBusy = true;
    setTimeout(() => {
      this.saslBusy = false;
      if (this.phase !== 'open') return;
      this.sendRaw(body);
      if (this.authFailures >= MAX_AUTH_ATTEMPTS) {
        this.close(new StreamError('policy-violation', 'too many failed authentication attempts'));
      }
    }, delay).unref();
  }

  private preAuthView(): PreAuthStream {
    return {
      remoteAddress: this.remoteAddress,
      secure: this.transport.secure,
      send: (stanza) => this.sendRaw(this.serialize(stanza)),
      close: (err) => this.close(err),
      saslFailed: this.saslFailed,
      legacyLogin: (username, password, resource, result) => this.legacyLogin(username, password, resource, result),
    };
  }

  /** See {@link PreAuthStream.legacyLogin} (XEP-0078 §3). */
  private async legacyLogin(
    username: string,
    password: string,
    resource: string,
    result: XmlElement,
  ): Promise<{ ok: true } | { error: StanzaError }> {
    if (this.saslFailed) {
      this.close(new StreamError('policy-violation', 'jabber:iq:auth after a failed SASL attempt (XEP-0078 §7)'));
      return { error: new StanzaError('not-authorized') };
    }
    if (this.authenticated || this.saslBusy || this.sasl !== null || this.phase !== 'open') {
      return { error: new StanzaError('unexpected-request', 'an authentication is already under way or done') };
    }
    if (!this.transport.secure && !this.ctx.options.allowPlainWithoutTls) {
      return { error: new StanzaError('not-authorized', 'the password may only be sent over TLS') };
    }
    this.saslBusy = true;
    try {
      let user: string | null = null;
      try {
        user = this.ctx.accounts.prepareUsername(username);
      } catch {
        // Not a valid localpart: no such account, answered like a wrong password.
      }
      if (user === null || !(await this.ctx.accounts.verifyPassword(user, password))) {
        this.authFailures++;
        const delay = this.ctx.throttle.fail(this.remoteAddress);
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
        if (this.authFailures >= MAX_AUTH_ATTEMPTS) this.close(new StreamError('policy-violation', 'too many failed authentication attempts'));
        return { error: new StanzaError('not-authorized') };
      }
      let jid: JID;
      try {
        jid = JID.of(user, this.ctx.domain, resource);
      } catch {
        return { error: new StanzaError('not-acceptable', `'${resource}' is not a valid resource`) };
      }
      if (this.phase !== 'open') return { error: new StanzaError('not-authorized') };
      this.ctx.throttle.succeed(this.remoteAddress);
      this.authenticated = true;
      this.username = user;
      this.startSession(jid, result);
      return { ok: true };
    } finally {
      this.saslBusy = false;
    }
  }

  // --- After authentication: resource binding ---------------------------

  private preBind(el: XmlElement): void {
    if (el.name === 'iq' && el.ns === NS.CLIENT) {
      const bind = el.getChild('bind', NS.BIND);
      if (bind && el.attrs.type === 'set') return this.bind(el, bind);
      if (el.attrs.type === 'set' && el.getChild('session', NS.SESSION)) {
        return this.replyError(el, new StanzaError('not-allowed', 'bind a resource first'));
      }
    }
    this.close(new StreamError('not-authorized', 'bind a resource first (RFC 6120 §7)'));
  }

  private bind(iq: XmlElement, bind: XmlElement): void {
    const requested = bind.getChildText('resource')?.trim() ?? '';
    let jid: JID;
    try {
      jid = JID.of(this.username, this.ctx.domain, requested === '' ? randomToken(6, 'hex') : requested);
    } catch {
      // RFC 6120 §7.7.2.1: a resource that cannot be processed.
      return this.replyError(iq, new StanzaError('bad-request', `'${requested}' is not a valid resource`));
    }
    this.startSession(jid, xml('iq', { type: 'result', id: iq.attrs.id }, xml('bind', { xmlns: NS.BIND }, xml('jid', null, jid.toString()))));
  }

  /**
   * Makes this authenticated stream the session of `jid`: registers it (replacing a session
   * of the same full JID), sends `result` (the bind result, or the XEP-0078 iq result), then
   * fires `session/started`.
   */
  private startSession(jid: JID, result: XmlElement): void {
    this.jid = jid;
    this.fullJidString = jid.toString();
    this.bound = true;
    clearTimeout(this.authTimer);
    this.authTimer = undefined; // not kept by an idle session
    const replaced = this.ctx.sessions.add(this);
    // RFC 6120 §7.7.2.2: our policy is that the new session replaces the old one.
    if (replaced) (replaced as C2SStream).close(new StreamError('conflict', 'replaced by a new session with the same resource'));
    this.sendRaw(this.serialize(result));
    this.log.debug({ jid: this.fullJidString, ip: this.remoteAddress }, 'c2s: session bound');
    void this.ctx.hooks.emit('session/started', this).catch((err) => this.log.error({ err }, 'session/started hook failed'));
  }

  private replyError(stanza: XmlElement, err: StanzaError): void {
    const r = errorReply(stanza, err);
    if (r) {
      delete r.attrs.from;
      this.sendRaw(this.serialize(r));
    }
  }

  // --- Bound: stanzas ---------------------------------------------------

  private inbound(el: XmlElement): void {
    if (el.ns !== NS.CLIENT) {
      for (const p of this.ctx.streamFeatures) {
        if (p.ns === el.ns && p.handle) return p.handle(el, this);
      }
      return this.close(new StreamError('unsupported-stanza-type', `<${el.name}/> in ${el.ns} is not supported`));
    }
    const name = el.name;
    if (name !== 'message' && name !== 'presence' && name !== 'iq') {
      return this.close(new StreamError('unsupported-stanza-type', `<${name}/> is not a stanza`));
    }
    // RFC 6120 §8.1.2.1: stamp 'from'; a client may only use its own full or bare JID.
    const from = el.attrs.from;
    if (from !== undefined && from !== this.fullJidString) {
      const j = JID.tryParse(from);
      if (!j || !(j.equals(this.jid) || (j.isBare() && j.equals(this.jid.bare())))) {
        return this.close(new StreamError('invalid-from', `'${from}' is not this session's address`));
      }
    }
    el.attrs.from = this.fullJidString;
    if (name === 'iq' && el.attrs.type === 'set' && el.attrs.to === undefined && el.getChild('session', NS.SESSION)) {
      // Legacy session establishment (RFC 3921 §3): nothing to do.
      return this.sendRaw(this.serialize(xml('iq', { type: 'result', id: el.attrs.id ?? '' })));
    }
    if (this.inQueue) {
      this.inQueue.push(el);
      return;
    }
    this.process(el);
  }

  /**
   * Runs the `stanza/in` filters, then routes. A filter that answers
   * asynchronously holds back the stanzas after it, so a session's stanzas are
   * processed in order (RFC 6120 §10.1).
   */
  private process(el: XmlElement): void {
    if (this.ctx.hooks.has('stanza/in')) {
      const r = this.ctx.hooks.fire('stanza/in', { stanza: el, session: this });
      if (r === true) return;
      if (r !== false) {
        this.inQueue = [];
        r.then(
          (handled) => {
            if (!handled && this.phase === 'open') this.ctx.router.route(el, this);
          },
          (err) => this.log.error({ err }, 'c2s: stanza/in filter failed'),
        ).finally(() => this.drain());
        return;
      }
    }
    this.ctx.router.route(el, this);
  }

  private drain(): void {
    const q = this.inQueue;
    this.inQueue = null;
    if (!q) return;
    for (let i = 0; i < q.length; i++) {
      if (this.phase !== 'open') return;
      this.process(q[i]!);
      if (this.inQueue) {
        // Another asynchronous filter: keep the rest for after it.
        (this.inQueue as XmlElement[]).push(...q.slice(i + 1));
        return;
      }
    }
  }

  // --- Output -----------------------------------------------------------

  /** Sends a stanza to the client (Session API). */
  send(stanza: XmlElement): void {
    if (this.phase !== 'open') return;
    if (this.ctx.hooks.has('stanza/out')) {
      const r = this.ctx.hooks.fire('stanza/out', { stanza, session: this });
      if (r === true) return;
    }
    this.sendRaw(this.serialize(stanza));
    if (this.transport.pendingBytes > this.ctx.options.maxOutputQueue) {
      this.close(new StreamError('policy-violation', 'the client does not read its stream'));
    }
  }

  /** A top-level element as the transport frames it: inheriting jabber:client on TCP, declaring it when framed. */
  private serialize(el: XmlElement): string {
    return this.transport.framed ? el.toDocument(NS.CLIENT) : el.toString();
  }

  private sendRaw(s: string): void {
    if (this.phase === 'closed') return;
    this.transport.write(s);
  }

  /**
   * Closes the stream (RFC 6120 §4.4): the error when given (§4.9), then
   * `</stream:stream>`, then the connection.
   */
  close(error?: StreamError): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    if (error) {
      if (!this.headerSent) {
        this.transport.openStream({ from: this.ctx.domain, id: this.id || randomToken(12, 'base64url') });
        this.headerSent = true;
      }
      this.log.debug({ condition: error.condition, text: error.text, ip: this.remoteAddress }, 'c2s: stream error');
    }
    this.phase = 'closing';
    if (this.headerSent) this.transport.closeStream(error);
    else this.transport.close();
    this.teardown();
  }

  private teardown(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    clearTimeout(this.authTimer);
    this.ctx.streams.delete(this);
    if (this.bound) {
      const wasRegistered = this.ctx.sessions.remove(this);
      void this.ctx.hooks
        .emit('session/ended', { session: this, replaced: !wasRegistered })
        .catch((err) => this.log.error({ err }, 'session/ended hook failed'));
    }
  }
}
