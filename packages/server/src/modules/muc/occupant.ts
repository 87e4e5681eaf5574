import { createHmac } from 'node:crypto';
import { NS, XmlElement, type JID } from '@parley/xmpp';
import type { Role } from './config.ts';

/** One client session of an occupant: its full JID and the presence it last sent to the room. */
export interface OccupantSession {
  jid: JID;
  /** The session's in-room presence, cleaned (see {@link cleanPresence}): `<presence>` with its children only. */
  presence: XmlElement;
}

/**
 * An occupant of a room (XEP-0045 §3): one room nickname, held by one user (bare JID) from
 * one or more client sessions (§7.2.10: the same bare JID may join under its nickname from
 * several resources).
 */
export class Occupant {
  /** The occupant JID `room@service/nick` (XEP-0045 §4.1). */
  jid: JID;
  /** The nickname in comparable form (RFC 8266 §2.4), the key of the room's occupant map. */
  key: string;
  /** Sessions by full JID string, in join order; the last one's presence is the one shown. */
  readonly sessions = new Map<string, OccupantSession>();
  role: Role;

  constructor(
    jid: JID,
    key: string,
    /** The user's real bare JID. */
    readonly bare: JID,
    role: Role,
    /** XEP-0421 occupant identifier: stable per (room, bare JID). */
    readonly occupantId: string,
  ) {
    this.jid = jid;
    this.key = key;
    this.role = role;
  }

  get nick(): string {
    return this.jid.resource;
  }

  /** The session whose presence other occupants see: the one that joined or changed presence last. */
  get current(): OccupantSession {
    let last: OccupantSession | undefined;
    for (const s of this.sessions.values()) last = s;
    return last!;
  }

  /** Makes `session` the current one (moved to the end of the map). */
  setSession(session: OccupantSession): void {
    this.sessions.delete(session.jid.toString());
    this.sessions.set(session.jid.toString(), session);
  }
}

/**
 * The part of a client's presence a room keeps and relays (XEP-0045 §17.3): everything but
 * the MUC elements the service generates or consumes (`muc`, `muc#user`, XEP-0421
 * `occupant-id`) and the addressing. Application extensions in any namespace stay.
 */
export function cleanPresence(stanza: XmlElement): XmlElement {
  const p = new XmlElement('presence', stanza.ns);
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    if (c.name === 'x' && (c.ns === NS.MUC || c.ns === NS.MUC_USER)) continue;
    if (c.name === 'occupant-id' && c.ns === NS.OCCUPANT_ID) continue;
    p.children.push(c);
  }
  return p;
}

/** XEP-0421 §4: an identifier stable per room and user, from which the user's JID cannot be learnt. */
export function occupantIdOf(roomKey: string, bare: JID): string {
  return createHmac('sha256', roomKey).update(bare.toString()).digest('base64url').slice(0, 22);
}

