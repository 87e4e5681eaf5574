import { JID, NS, StanzaError, errorReply, randomToken, xml, type XmlElement } from '@parley/xmpp';
import { HANDLED, type Hooks } from './hooks.ts';
import type { Session, SessionManager } from './session.ts';
import type { Logger } from './logger.ts';

/** How a stanza is addressed, relative to this server (ARCHITECTURE §2). */
export type AddressKind = 'host' | 'bare' | 'full' | 'remote';

/** What stanza hooks receive. */
export interface StanzaEvent {
  /** The stanza; `from` is stamped and trusted, `to` may be absent (see {@link to}). */
  stanza: XmlElement;
  /** The sender (RFC 6120 §8.1.2). */
  from: JID;
  /** The recipient; when the stanza had no `to`, the sender's bare JID (RFC 6120 §10.3). */
  to: JID;
  /** The client session the stanza came from, or `null` when the server generated it. */
  origin: Session | null;
  kind: AddressKind;
}

/**
 * A component's stanza handler (ARCHITECTURE §2): every stanza addressed to the
 * component's domain (any local or resource part), `from` stamped and trusted. It
 * may throw a StanzaError, which the router turns into the error reply.
 */
export type ComponentHandler = (stanza: XmlElement, from: JID, to: JID) => void;

/** An iq request handler: returns the payload of the result (or `null` for an empty result); throws a StanzaError to fail. */
export type IqHandler = (ev: StanzaEvent) => XmlElement | null | Promise<XmlElement | null>;

interface PendingIq {
  resolve: (el: XmlElement) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  to: string;
}

/**
 * The one router (ARCHITECTURE §2): every stanza from a session or a module goes
 * through {@link route}. It classifies the address, fires the hook for it
 * (`iq/<kind>/<payload ns>`, `message/<kind>`, `presence/<kind>`, `route/remote`),
 * and applies the delivery rules of RFC 6120 §10 and RFC 6121 §8 when no module
 * handled the stanza. Handler errors become stanza errors (RFC 6120 §8.3).
 */
export class Router {
  readonly hooks: Hooks;
  readonly sessions: SessionManager;
  private hosts: Set<string>;
  private log: Logger;
  private pending = new Map<string, PendingIq>();
  private components = new Map<string, ComponentHandler>();

  constructor(opts: { hooks: Hooks; sessions: SessionManager; hosts: Iterable<string>; log: Logger }) {
    this.hooks = opts.hooks;
    this.sessions = opts.sessions;
    this.hosts = new Set(opts.hosts);
    this.log = opts.log;
    this.installDeliveryRules();
  }

  /** `true` when `domain` is served by this server (a virtual host or a component added with {@link addHost}). */
  isLocal(domain: string): boolean {
    return this.hosts.has(domain);
  }

  /** Adds a locally served domain (a virtual host). */
  addHost(domain: string): void {
    this.hosts.add(domain);
  }

  /**
   * Makes `domain` a component (a MUC service, pubsub, an external XEP-0114
   * component): every stanza to it goes to `handler`, whoever sends it. Returns a
   * function that removes the component. Throws when the domain is already served.
   */
  addComponent(domain: string, handler: ComponentHandler): () => void {
    if (this.hosts.has(domain) || this.components.has(domain)) throw new Error(`${domain} is already served`);
    this.components.set(domain, handler);
    return () => {
      if (this.components.get(domain) === handler) this.components.delete(domain);
    };
  }

  /** `true` when `domain` is a component of this server (see {@link addComponent}). */
  isComponent(domain: string): boolean {
    return this.components.has(domain);
  }

  /**
   * Routes a stanza. `stanza.attrs.from` must be set and trusted (the session
   * stamps it, RFC 6120 §8.1.2.1). Never throws: failures become error replies.
   */
  route(stanza: XmlElement, origin: Session | null = null): void {
    let from: JID;
    try {
      from = JID.parse(stanza.attrs.from!);
    } catch {
      this.log.warn({ stanza: stanza.toString() }, 'router: stanza without a valid from dropped');
      return;
    }
    let to: JID;
    const toAttr = stanza.attrs.to;
    if (toAttr === undefined) to = from.bare();
    else {
      const parsed = JID.tryParse(toAttr);
      if (!parsed) {
        this.bounce(stanza, new StanzaError('jid-malformed', `'${toAttr}' is not a valid JID (RFC 7622)`));
        return;
      }
      to = parsed;
    }
    this.routeTo(stanza, from, to, origin);
  }

  /**
   * {@link route} for a caller that holds the addresses parsed already (a component's
   * fan-out): `from` and `to` must be what the stanza's attributes say (`to` is the
   * sender's bare JID when the stanza has none).
   */
  routeTo(stanza: XmlElement, from: JID, to: JID, origin: Session | null = null): void {
    const component = this.components.get(to.domain);
    if (component !== undefined) {
      if (stanza.name === 'iq' && !this.validIq(stanza)) return;
      try {
        component(stanza, from, to);
      } catch (err) {
        this.fail({ stanza, from, to, origin, kind: 'host' }, err);
      }
      return;
    }
    const kind: AddressKind = !this.hosts.has(to.domain)
      ? 'remote'
      : to.local === ''
        ? 'host'
        : to.resource === ''
          ? 'bare'
          : 'full';
    const ev: StanzaEvent = { stanza, from, to, origin, kind };
    const name = stanza.name;
    let event: string;
    if (kind === 'remote') event = 'route/remote';
    else if (name === 'iq') {
      if (!this.validIq(stanza)) return;
      const type = stanza.attrs.type;
      if (type === 'get' || type === 'set') {
        event = kind === 'full' ? 'iq/full' : `iq/${kind}/${stanza.firstElement()!.ns}`;
      } else {
        if (kind === 'host' && this.settle(stanza, from)) return;
        event = `iq/${kind}/response`;
      }
    } else if (name === 'message' || name === 'presence') event = `${name}/${kind}`;
    else {
      this.log.debug({ name }, 'router: unknown stanza kind dropped');
      return;
    }
    this.dispatch(event, ev);
  }

  /**
   * RFC 6120 §8.2.3: an iq has a known type, and a get or set an id and exactly one payload.
   * Answers `bad-request` and returns `false` otherwise.
   */
  private validIq(stanza: XmlElement): boolean {
    const type = stanza.attrs.type;
    if (type === 'get' || type === 'set') {
      if (stanza.attrs.id === undefined || !stanza.firstElement() || stanza.getChildren().length !== 1) {
        this.bounce(stanza, new StanzaError('bad-request', 'an iq get/set has an id and exactly one payload (RFC 6120 §8.2.3)'));
        return false;
      }
      return true;
    }
    if (type === 'result' || type === 'error') return true;
    this.bounce(stanza, new StanzaError('bad-request', `iq type '${type ?? ''}' is not one of get, set, result, error`));
    return false;
  }

  private dispatch(event: string, ev: StanzaEvent): void {
    let r: boolean | Promise<boolean>;
    try {
      r = this.hooks.fire(event, ev);
    } catch (err) {
      this.fail(ev, err);
      return;
    }
    if (r === true) return;
    if (r === false) {
      this.unhandled(event, ev);
      return;
    }
    r.then(
      (handled) => {
        if (!handled) this.unhandled(event, ev);
      },
      (err) => this.fail(ev, err),
    );
  }

  private unhandled(event: string, ev: StanzaEvent): void {
    const { stanza } = ev;
    if (stanza.name === 'iq' && (stanza.attrs.type === 'get' || stanza.attrs.type === 'set')) {
      // RFC 6120 §8.4: an iq request nobody understands.
      this.bounce(stanza, new StanzaError('service-unavailable'));
    } else if (event === 'route/remote') {
      this.bounce(stanza, new StanzaError('remote-server-not-found', `no route to ${ev.to.domain}`));
    }
    // Messages and presence that nobody took are dropped (RFC 6121 §8.5; delivery rules below always take them).
  }

  private fail(ev: StanzaEvent, err: unknown): void {
    if (err instanceof StanzaError) {
      this.bounce(ev.stanza, err);
      return;
    }
    this.log.error({ err, stanza: ev.stanza.toString() }, 'router: handler failed');
    this.bounce(ev.stanza, new StanzaError('internal-server-error'));
  }

  /**
   * Sends the error reply for `stanza` back to its sender (RFC 6120 §8.3.1).
   * Stanzas of type `error` are never answered.
   */
  bounce(stanza: XmlElement, error: StanzaError): void {
    if (stanza.attrs.from === undefined) return;
    const reply = errorReply(stanza, error);
    if (!reply) return;
    // The error comes from the addressed entity, or from the server when the address was unusable.
    const to = stanza.attrs.to === undefined ? undefined : JID.tryParse(stanza.attrs.to);
    if (!to) reply.attrs.from = JID.parse(stanza.attrs.from).domain;
    this.route(reply, null);
  }

  /**
   * Sends an iq request from the server (or a module) and resolves with the
   * `result`; rejects with a StanzaError for an `error` reply, or with
   * `remote-server-timeout` after `timeoutMs`.
   */
  request(iq: XmlElement, timeoutMs = 30000): Promise<XmlElement> {
    const id = iq.attrs.id ?? (iq.attrs.id = randomToken(8, 'hex'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new StanzaError('remote-server-timeout', 'no answer'));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer, to: iq.attrs.to ?? '' });
      this.route(iq, null);
    });
  }

  private settle(stanza: XmlElement, from: JID): boolean {
    const id = stanza.attrs.id;
    if (id === undefined) return false;
    const p = this.pending.get(id);
    if (!p) return false;
    // Only the entity asked may answer (its bare JID answers for the account).
    const asked = JID.tryParse(p.to);
    if (asked && !from.equals(asked) && !(asked.isBare() && from.bare().equals(asked))) return false;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (stanza.attrs.type === 'result') p.resolve(stanza);
    else {
      const cond = stanza.getChild('error')?.getChildren().find((c) => c.ns === NS.STANZAS && c.name !== 'text');
      p.reject(new StanzaError((cond?.name as never) ?? 'undefined-condition'));
    }
    return true;
  }

  /**
   * Delivery rules for local addresses that no module took, at the lowest
   * priority so modules (roster, presence, offline, carbons, …) come first.
   */
  private installDeliveryRules(): void {
    const LOW = -1000;
    const h = this.hooks;
    // RFC 6120 §10.5.3 / RFC 6121 §8.5.3: full JID.
    const toFull = (ev: StanzaEvent): boolean => {
      const s = this.sessions.get(ev.to);
      if (s) {
        s.send(ev.stanza);
        return HANDLED;
      }
      const { stanza } = ev;
      if (stanza.name === 'message') {
        const type = stanza.attrs.type ?? 'normal';
        // §8.5.3.2.1: normal and chat fall back to the bare JID; groupchat bounces; headline and error are dropped.
        if (type === 'normal' || type === 'chat') {
          this.dispatch('message/bare', { ...ev, to: ev.to.bare(), kind: 'bare' });
        } else if (type === 'groupchat') this.bounce(stanza, new StanzaError('service-unavailable'));
        return HANDLED;
      }
      if (stanza.name === 'iq') {
        if (stanza.attrs.type === 'get' || stanza.attrs.type === 'set') this.bounce(stanza, new StanzaError('service-unavailable'));
        return HANDLED;
      }
      // §8.5.3.2.3: presence to an unavailable resource is dropped (subscription types are handled by the presence module).
      return HANDLED;
    };
    h.on('message/full', toFull, LOW);
    h.on('presence/full', toFull, LOW);
    h.on('iq/full', toFull, LOW);
    h.on('iq/full/response', toFull, LOW);
    h.on('iq/bare/response', () => HANDLED, LOW);
    h.on('iq/host/response', () => HANDLED, LOW);

    // RFC 6121 §8.5.2: bare JID of a local account.
    h.on('message/bare', (ev: StanzaEvent) => {
      const { stanza } = ev;
      const type = stanza.attrs.type ?? 'normal';
      if (type === 'error') return HANDLED;
      const targets = this.messageTargets(ev.to, type);
      if (targets.length === 0) {
        // §8.5.2.2: no available resource; the offline module (if loaded) runs before this rule.
        if (type === 'groupchat' || type === 'normal' || type === 'chat') {
          this.bounce(stanza, new StanzaError('service-unavailable'));
        }
        return HANDLED;
      }
      for (const s of targets) s.send(stanza);
      return HANDLED;
    }, LOW);
    h.on('presence/bare', (ev: StanzaEvent) => {
      const type = ev.stanza.attrs.type;
      // Directed availability to a bare JID goes to every available resource (§8.5.2.1.2).
      if (type === undefined || type === 'unavailable' || type === 'probe') {
        for (const s of this.sessions.resources(ev.to)) if (s.presence) s.send(ev.stanza);
      }
      return HANDLED;
    }, LOW);
  }

  /**
   * The sessions a message to a bare JID goes to (RFC 6121 §8.5.2.1.1): for
   * `chat` and `normal`, the available resources with the highest non-negative
   * priority; for `headline`, every available resource with non-negative
   * priority; `groupchat` to a bare JID is not delivered.
   */
  messageTargets(bare: JID, type: string): Session[] {
    if (type === 'groupchat') return [];
    const out: Session[] = [];
    let best = -1;
    for (const s of this.sessions.resources(bare)) {
      if (!s.presence || s.priority < 0) continue;
      if (type === 'headline') {
        out.push(s);
        continue;
      }
      if (s.priority > best) {
        best = s.priority;
        out.length = 0;
        out.push(s);
      } else if (s.priority === best) out.push(s);
    }
    return out;
  }

  /** Builds a reply iq to a request. */
  static resultFor(iq: XmlElement, payload: XmlElement | null): XmlElement {
    return xml('iq', { type: 'result', id: iq.attrs.id, to: iq.attrs.from, from: iq.attrs.to }, payload);
  }
}
