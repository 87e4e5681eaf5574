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
  private byBare = new Map<string, Map<string, Session>>();
  private total = 0;

  /** The session bound to a full JID, if online. */
  get(jid: JID): Session | undefined {
    return this.byBare.get(jid.bareString())?.get(jid.resource);
  }

  /** Every session of an account (bare JID), in bind order. */
  resources(bare: JID): Session[] {
    const m = this.byBare.get(bare.bareString());
    return m ? [...m.values()] : [];
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
    let m = this.byBare.get(key);
    if (!m) {
      m = new Map();
      this.byBare.set(key, m);
    }
    const old = m.get(session.jid.resource);
    m.set(session.jid.resource, session);
    if (!old) this.total++;
    return old;
  }

  /** Removes a session if it is the one registered for its full JID. Returns whether it was. */
  remove(session: Session): boolean {
    const key = session.jid.bareString();
    const m = this.byBare.get(key);
    if (!m || m.get(session.jid.resource) !== session) return false;
    m.delete(session.jid.resource);
    if (m.size === 0) this.byBare.delete(key);
    this.total--;
    return true;
  }

  /** Number of online sessions. */
  get size(): number {
    return this.total;
  }

  /** Iterates every online session. */
  *all(): IterableIterator<Session> {
    for (const m of this.byBare.values()) yield* m.values();
  }
}
