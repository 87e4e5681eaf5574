import type { JID, StreamError, XmlElement } from '@parley/xmpp';

/**
 * A bound client session (RFC 6120 §7): one connected resource of an account,
 * whatever the transport (TCP, WebSocket, BOSH).
 */
export interface Session {
  /** Stream id, unique in this process. */
  readonly id: string;
  /** The full JID bound to the session (RFC 6120 §7.6). */
  readonly jid: JID;
  /** Presence priority (RFC 6121 §4.7.2.3), -128..127; 0 until presence is sent. */
  priority: number;
  /** The last available presence the client broadcast, or `null` when not available (RFC 6121 §4.2). */
  presence: XmlElement | null;
  /** Time of the last stanza or keepalive received, ms since epoch. */
  lastActivity: number;
  /** The client's IP address, for logs and rate limits. */
  readonly remoteAddress: string;
  /** `true` when the stream is TLS-protected. */
  readonly secure: boolean;
  /** Per-module session state; modules key it by their name. */
  readonly data: Map<string, unknown>;
  /** Sends a stanza to the client (outbound `stanza/out` filters run first). */
  send(stanza: XmlElement): void;
  /** Ends the stream, with a stream error when given (RFC 6120 §4.4, §4.9). */
  close(error?: StreamError): void;
}

/**
 * The online sessions of this node: full JID → session, bare JID → resources.
 */
export class SessionManager {
  /**
   * Bare JID → its session, or a Map resource → session once an account has more than one
   * (most accounts have one: no Map per account, which an idle session would pay ~200 bytes for).
   */
  private byBare = new Map<string, Session | Map<string, Session>>();
  private total = 0;

  /** The session bound to a full JID, if online. */
  get(jid: JID): Session | undefined {
    const r = this.byBare.get(jid.bareString());
    if (r === undefined) return undefined;
    if (r instanceof Map) return r.get(jid.resource);
    return r.jid.resource === jid.resource ? r : undefined;
  }

  /** Every session of an account (bare JID), in bind order. */
  resources(bare: JID): Session[] {
    const r = this.byBare.get(bare.bareString());
    if (r === undefined) return [];
    return r instanceof Map ? [...r.values()] : [r];
  }

  /** `true` when the account has at least one session. */
  isOnline(bare: JID): boolean {
    return this.byBare.has(bare.bareString());
  }

  /** `true` when the account `bare` (a prepared `local@domain` string) has at least one session. */
  hasAccount(bare: string): boolean {
    return this.byBare.has(bare);
  }

  /**
   * Adds a session. Returns the session it replaces (same full JID), which the
   * caller closes with `conflict` (RFC 6120 §7.7.2.2).
   */
  add(session: Session): Session | undefined {
    const key = session.jid.bareString();
    const resource = session.jid.resource;
    const r = this.byBare.get(key);
    let old: Session | undefined;
    if (r === undefined) {
      this.byBare.set(key, session);
    } else if (r instanceof Map) {
      old = r.get(resource);
      r.set(resource, session);
    } else if (r.jid.resource === resource) {
      old = r;
      this.byBare.set(key, session);
    } else {
      this.byBare.set(key, new Map([[r.jid.resource, r], [resource, session]]));
    }
    if (!old) this.total++;
    return old;
  }

  /** Removes a session if it is the one registered for its full JID. Returns whether it was. */
  remove(session: Session): boolean {
    const key = session.jid.bareString();
    const r = this.byBare.get(key);
    if (r === undefined) return false;
    if (r instanceof Map) {
      if (r.get(session.jid.resource) !== session) return false;
      r.delete(session.jid.resource);
      // Back to the plain entry when one session is left.
      if (r.size === 1) this.byBare.set(key, r.values().next().value!);
    } else {
      if (r !== session) return false;
      this.byBare.delete(key);
    }
    this.total--;
    return true;
  }

  /** Number of online sessions. */
  get size(): number {
    return this.total;
  }

  /** Iterates every online session. */
  *all(): IterableIterator<Session> {
    for (const r of this.byBare.values()) {
      if (r instanceof Map) yield* r.values();
      else yield r;
    }
  }
}
