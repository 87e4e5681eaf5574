import { randomBytes } from 'node:crypto';
import {
  JID,
  NS,
  PrecisError,
  StanzaError,
  XmlElement,
  dataFormElement,
  fieldValues,
  formTypeOf,
  nickname,
  nicknameForComparison,
  parseDataForm,
  parseFormBoolean,
  stanzaErrorCondition,
  xml,
  type StanzaErrorCondition,
} from '@parley/xmpp';
import {
  AFFILIATION_RANK,
  applyConfigForm,
  configForm,
  roomFeatures,
  roomInfoForm,
  type Affiliation,
  type ConfigLimits,
  type Role,
  type RoomConfig,
} from './config.ts';
import { Occupant, cleanPresence, occupantIdOf, type OccupantSession } from './occupant.ts';

/** What a room needs from its service. */
export interface RoomHost {
  /** The service domain, e.g. `conference.example.org`. */
  readonly domain: string;
  readonly limits: ConfigLimits;
  /** Accept presence without the MUC `<x/>` as a join (XEP-0045 §7.2.20, groupchat 1.0). */
  readonly groupchat10: boolean;
  /** Routes a stanza whose `from` and `to` are already set (and parsed). */
  send(stanza: XmlElement, from: JID, to: JID): void;
  /** Answers a stanza with an error (RFC 6120 §8.3) from the address it was sent to. */
  bounce(stanza: XmlElement, error: StanzaError): void;
  /** `true` for a service administrator (owner of every room). */
  isServiceAdmin(bare: JID): boolean;
  /** The room's state changed: store it (persistent room) or forget it (temporary). */
  save(room: Room): void;
  /** Answers presence without the MUC `<x/>` from a non-occupant with the §7.2.20 kick. */
  kickNonOccupant(from: JID, to: JID): void;
  /** Archives a groupchat message of a persistent room. */
  archive(room: Room, entry: HistoryEntry): void;
  /** The room is gone (destroyed, or a temporary room left empty). */
  gone(room: Room): void;
}

/** A message of the discussion history (XEP-0045 §7.2.14): the reflected stanza without 'to'. */
export interface HistoryEntry {
  stanza: XmlElement;
  /** ms since epoch. */
  stamp: number;
  /** XEP-0359 stanza-id. */
  id: string;
  nick: string;
  /** The sender's real bare JID. */
  sender: string;
  /** Characters of the serialized stanza, for `maxchars`; 0 until first needed. */
  size: number;
}

/** The current subject (XEP-0045 §8.1). */
export interface RoomSubject {
  text: string;
  /** Nickname of who set it, or '' for the room itself. */
  nick: string;
  stamp: number;
}

/** An affiliation entry of a bare JID (XEP-0045 §5.2). */
export interface AffiliationEntry {
  affiliation: Exclude<Affiliation, 'none'>;
  nick: string | null;
  reason: string | null;
}

/** Status codes (XEP-0045 §15.6). */
const S = {
  NON_ANONYMOUS: 100,
  SELF: 110,
  LOGGING: 170,
  LOGGING_OFF: 171,
  NOW_NON_ANONYMOUS: 172,
  NOW_SEMI_ANONYMOUS: 173,
  CONFIG_CHANGED: 104,
  CREATED: 201,
  NICK_MODIFIED: 210,
  BANNED: 301,
  NICK_CHANGE: 303,
  KICKED: 307,
  AFFILIATION_CHANGE: 321,
  MEMBERS_ONLY: 322,
  SHUTDOWN: 332,
  ERROR: 333,
} as const;

/** Delivery errors after which an occupant is taken for a ghost (XEP-0045 §18.1.2 "Ghost Users"); service-unavailable is what RFC 6121 §8.5.3.2.1 bounces for groupchat to a gone resource. */
const GHOST_ERRORS: ReadonlySet<string> = new Set(['gone', 'item-not-found', 'recipient-unavailable', 'redirect', 'remote-server-not-found', 'remote-server-timeout', 'service-unavailable']);

/** Disco node for discovering one's reserved nickname (XEP-0045 §7.12). */
const RESERVED_NICK_NODE = 'x-roomuser-item';

/** Forwarded iq requests between occupants wait this long for an answer (ms). */
const IQ_FORWARD_TIMEOUT = 60_000;

let idSeq = 0;

/** A stanza-id (XEP-0359) that sorts in arrival order: time in ms, then a counter, base 36. */
export function newStanzaId(now: number): string {
  idSeq = (idSeq + 1) % 1_679_616; // 36^4
  return now.toString(36).padStart(9, '0') + idSeq.toString(36).padStart(4, '0') + randomBytes(3).toString('hex');
}

interface PendingIq {
  requester: JID;
  id: string;
  /** The occupant JID the request was sent to (the answer comes from it). */
  target: JID;
  /** The real JID the request went to. */
  realTarget: string;
  timer: NodeJS.Timeout;
}

/**
 * A multi-user chat room (XEP-0045): its configuration, affiliations, occupants,
 * discussion history and subject, and every protocol exchange addressed to the room
 * (`room@service`) or to an occupant (`room@service/nick`).
 *
 * Errors go back as the XMPP conditions XEP-0045 names for each case; a stanza never
 * changes the room unless every check passed.
 */
export class Room {
  /** The room JID `room@service`. */
  readonly jid: JID;
  config: RoomConfig;
  readonly affiliations = new Map<string, AffiliationEntry>();
  /** Occupants by comparable nickname (RFC 8266 §2.4). */
  readonly occupants = new Map<string, Occupant>();
  /** Occupants by the full JID of each of their sessions. */
  private bySession = new Map<string, Occupant>();
  history: HistoryEntry[] = [];
  subject: RoomSubject | null = null;
  /** A new room waiting for its owner's configuration (XEP-0045 §10.1.1): nobody else may enter. */
  locked = false;
  /** `true` once the room is in storage. */
  stored = false;
  readonly createdAt: number;
  /** Key of the XEP-0421 occupant identifiers (stored with the room, so identifiers survive restarts). */
  readonly occupantIdKey: string;
  private pendingIq = new Map<string, PendingIq>();
  private destroyed = false;

  constructor(
    readonly host: RoomHost,
    name: string,
    config: RoomConfig,
    opts: { createdAt?: number; occupantIdKey?: string } = {},
  ) {
    this.jid = JID.of(name, host.domain);
    this.config = config;
    this.createdAt = opts.createdAt ?? Date.now();
    this.occupantIdKey = opts.occupantIdKey ?? randomBytes(16).toString('base64');
  }

  /** The room localpart. */
  get name(): string {
    return this.jid.local;
  }

  /** `true` while somebody is in the room. */
  get occupied(): boolean {
    return this.occupants.size > 0;
  }

  // ---------------------------------------------------------------------------
  // Affiliations and roles
  // ---------------------------------------------------------------------------

  /** The affiliation of a bare JID; service administrators own every room. */
  affiliationOf(bare: JID): Affiliation {
    if (this.host.isServiceAdmin(bare)) return 'owner';
    return this.affiliations.get(bare.toString())?.affiliation ?? 'none';
  }

  /** The role an occupant with `affiliation` gets on entering (XEP-0045 §5.1.2). */
  private defaultRole(affiliation: Affiliation): Role {
    if (affiliation === 'owner' || affiliation === 'admin') return 'moderator';
    if (affiliation === 'member') return 'participant';
    return this.config.moderated ? 'visitor' : 'participant';
  }

  /** Bare JIDs with an affiliation. */
  listAffiliation(a: Exclude<Affiliation, 'none'>): string[] {
    const out: string[] = [];
    for (const [jid, e] of this.affiliations) if (e.affiliation === a) out.push(jid);
    return out;
  }

  // ---------------------------------------------------------------------------
  // Entry point
  // ---------------------------------------------------------------------------

  /** Handles a stanza addressed to the room or to one of its occupant JIDs. */
  handle(stanza: XmlElement, from: JID, to: JID): void {
    if (this.destroyed) {
      this.host.bounce(stanza, new StanzaError('item-not-found', 'the room is gone'));
      return;
    }
    switch (stanza.name) {
      case 'presence':
        this.onPresence(stanza, from, to);
        return;
      case 'message':
        this.onMessage(stanza, from, to);
        return;
      case 'iq':
        this.onIq(stanza, from, to);
        return;
    }
  }

  // ---------------------------------------------------------------------------
  // Presence: enter, change, nickname change, exit (XEP-0045 §7.2, §7.6, §7.7, §7.14)
  // ---------------------------------------------------------------------------

  private onPresence(stanza: XmlElement, from: JID, to: JID): void {
    const type = stanza.attrs.type;
    const occupant = this.bySession.get(from.toString());
    if (type === 'error') {
      // §18.1.2: an occupant whose client answers with a delivery error is gone.
      if (occupant) this.removeGhost(occupant, from, stanza);
      return;
    }
    if (type === 'unavailable') {
      // §7.14 (rule 5 of §17.3: ignored from somebody not in the room).
      if (occupant) this.leave(occupant, from, cleanPresence(stanza));
      return;
    }
    if (type !== undefined) return; // probes, subscriptions: not joins or exits (§17.3 rules 1, 2).
    if (to.resource === '') {
      // §7.2.1: no nickname.
      this.host.bounce(stanza, new StanzaError('jid-malformed', 'give a nickname: send presence to room@service/nick'));
      return;
    }
    const x = stanza.getChild('x', NS.MUC);
    if (occupant) {
      if (occupant.key !== this.keyOf(to.resource)) {
        this.changeNick(occupant, stanza, from, to.resource);
        return;
      }
      occupant.setSession({ jid: from, presence: cleanPresence(stanza) });
      if (x) {
        // §7.2.1 / §17.3 rule 3: a join from a session already in the room asks to resynchronize:
        // the others see the presence, the session gets everything a join gets.
        this.broadcastPresence(occupant, [], occupant);
        this.sendRoomState(occupant, from, [], x);
      } else this.broadcastPresence(occupant, []); // §7.7: a presence update.
      return;
    }
    if (!x && !this.host.groupchat10) {
      // §7.2.20 (since 1.32): presence without <x/> from a non-occupant gets an explicit kick.
      this.host.kickNonOccupant(from, to);
      return;
    }
    this.join(stanza, from, to.resource, x);
  }

  /** Comparable form of a nickname (RFC 8266 §2.4), or the nickname itself when it is not one. */
  private keyOf(nick: string): string {
    try {
      return nicknameForComparison(nick);
    } catch {
      return nick;
    }
  }

  /**
   * Enters the room (XEP-0045 §7.2): the checks of §7.2.4–§7.2.9 in order, then the
   * presence of the others, self-presence, history and subject (§7.1 order of events).
   */
  private join(stanza: XmlElement, from: JID, requestedNick: string, x: XmlElement | undefined, created = false): void {
    let nick: string;
    try {
      nick = nickname(requestedNick);
    } catch (err) {
      const text = err instanceof PrecisError ? err.message : 'not a valid nickname';
      this.host.bounce(stanza, new StanzaError('jid-malformed', `nickname: ${text} (RFC 8266)`));
      return;
    }
    const key = this.keyOf(nick);
    const bare = from.bare();
    const affiliation = this.affiliationOf(bare);
    const deny = (condition: StanzaErrorCondition, text: string) => this.host.bounce(stanza, new StanzaError(condition, text));
    if (this.locked && affiliation !== 'owner') return deny('item-not-found', 'the room is being created; its owner has not configured it yet (XEP-0045 §7.2.11)');
    if (affiliation === 'outcast') return deny('forbidden', 'you are banned from this room');
    if (this.config.membersOnly && affiliation === 'none') return deny('registration-required', 'this room is members-only');
    if (this.config.passwordProtected && affiliation !== 'owner') {
      const password = x?.getChildText('password');
      if (password !== this.config.password) return deny('not-authorized', password === undefined ? 'this room needs a password' : 'wrong password');
    }
    const holder = this.occupants.get(key);
    if (holder && !holder.bare.equals(bare)) return deny('conflict', 'that nickname is in use');
    for (const [jid, e] of this.affiliations) {
      if (e.nick !== null && this.keyOf(e.nick) === key && jid !== bare.toString()) return deny('conflict', 'that nickname is reserved by another user');
    }
    if (!holder && this.occupants.size >= this.config.maxUsers && affiliation !== 'owner' && affiliation !== 'admin') {
      return deny('service-unavailable', 'the room is full');
    }
    const session: OccupantSession = { jid: from, presence: cleanPresence(stanza) };
    let occupant = holder;
    if (occupant) {
      occupant.setSession(session);
    } else {
      occupant = new Occupant(this.jid.withResource(nick), key, bare, this.defaultRole(affiliation), occupantIdOf(this.occupantIdKey, bare));
      occupant.sessions.set(from.toString(), session);
      this.occupants.set(key, occupant);
    }
    this.bySession.set(from.toString(), occupant);
    const codes: number[] = [];
    if (created) codes.push(S.CREATED);
    if (nick !== requestedNick) codes.push(S.NICK_MODIFIED);
    // Others first learn of the newcomer (or of its new current session).
    this.broadcastPresence(occupant, [], occupant);
    this.sendRoomState(occupant, from, codes, x);
  }

  /**
   * What a session receives on entering (XEP-0045 §7.1): the others' presence, its own
   * presence with `codes` (and 110, 100, 170), the discussion history asked for in `x`
   * (§7.2.14) and the subject (§7.2.15).
   */
  private sendRoomState(occupant: Occupant, to: JID, codes: number[], x: XmlElement | undefined): void {
    const viewerSeesJids = this.config.whois === 'anyone' || occupant.role === 'moderator';
    for (const other of this.occupants.values()) {
      if (other === occupant || !this.config.presenceBroadcast.includes(other.role)) continue;
      this.sendTo(this.presenceOf(other, { jid: viewerSeesJids }), other.jid, to);
    }
    const self = [S.SELF, ...codes];
    if (this.config.whois === 'anyone') self.push(S.NON_ANONYMOUS);
    if (this.config.logging) self.push(S.LOGGING);
    this.sendTo(this.presenceOf(occupant, { jid: true, codes: self }), occupant.jid, to);
    for (const h of this.historyFor(x?.getChild('history'))) {
      const m = new XmlElement('message', h.stanza.ns, { ...h.stanza.attrs, to: to.toString() });
      m.children = [...h.stanza.children, xml('delay', { xmlns: NS.DELAY, from: this.jid.toString(), stamp: new Date(h.stamp).toISOString() })];
      this.host.send(m, JID.parse(h.stanza.attrs.from!), to);
    }
    // §7.2.15: the subject, empty when none is set, from the occupant JID of who set it.
    const subjectFrom = this.subject && this.subject.nick !== '' ? this.jid.withResource(this.subject.nick) : this.jid;
    this.sendTo(
      xml('message', { from: subjectFrom.toString(), type: 'groupchat', id: randomBytes(6).toString('hex') }, xml('subject', null, this.subject?.text ?? '')),
      subjectFrom,
      to,
    );
  }

  /** The history entries to send for a `<history/>` request (XEP-0045 §7.2.14). */
  private historyFor(req: XmlElement | undefined): HistoryEntry[] {
    let list = this.history;
    const limit = this.config.maxHistoryFetch;
    if (list.length > limit) list = list.slice(list.length - limit);
    if (!req) return list;
    const num = (name: string): number | undefined => {
      const v = req.attrs[name];
      if (v === undefined) return undefined;
      const n = Number(v);
      return Number.isInteger(n) && n >= 0 ? n : undefined;
    };
    const seconds = num('seconds');
    if (seconds !== undefined) {
      const after = Date.now() - seconds * 1000;
      list = list.filter((h) => h.stamp >= after);
    }
    const since = req.attrs.since !== undefined ? Date.parse(req.attrs.since) : NaN;
    if (!Number.isNaN(since)) list = list.filter((h) => h.stamp > since);
    const maxstanzas = num('maxstanzas');
    if (maxstanzas !== undefined && list.length > maxstanzas) list = list.slice(list.length - maxstanzas);
    const maxchars = num('maxchars');
    if (maxchars !== undefined) {
      let total = 0;
      let i = list.length;
      while (i > 0) {
        const h = list[i - 1]!;
        if (h.size === 0) h.size = h.stanza.toString().length;
        if (total + h.size > maxchars) break;
        total += h.size;
        i--;
      }
      list = list.slice(i);
    }
    return list;
  }

  /**
   * The in-room presence of `occupant` (XEP-0045 §7.2.3, §17.3 rule 8): its current
   * presence (or unavailable), with the `muc#user` item — `jid` when `opts.jid` —
   * status codes and, for exits, actor and reason; and its XEP-0421 occupant id.
   */
  private presenceOf(
    occupant: Occupant,
    opts: { jid: boolean; codes?: number[]; unavailable?: XmlElement | null; newNick?: string; actor?: string; reason?: string; role?: Role; affiliation?: Affiliation; destroy?: XmlElement },
  ): XmlElement {
    const base = opts.unavailable !== undefined ? (opts.unavailable ?? new XmlElement('presence', '')) : occupant.current.presence;
    const p = new XmlElement('presence', base.ns, { from: occupant.jid.toString() });
    if (opts.unavailable !== undefined) p.attrs.type = 'unavailable';
    const item = xml('item', {
      affiliation: opts.affiliation ?? this.affiliationOf(occupant.bare),
      role: opts.role ?? occupant.role,
      jid: opts.jid ? occupant.current.jid.toString() : undefined,
      nick: opts.newNick,
    });
    if (opts.actor !== undefined) item.append(xml('actor', { nick: opts.actor }));
    if (opts.reason !== undefined) item.append(xml('reason', null, opts.reason));
    const x = xml('x', { xmlns: NS.MUC_USER }, item, opts.destroy ?? null, (opts.codes ?? []).map((code) => xml('status', { code })));
    p.children = [...base.children, x, xml('occupant-id', { xmlns: NS.OCCUPANT_ID, id: occupant.occupantId })];
    return p;
  }

  /**
   * Sends the presence of `occupant` to everyone in the room (XEP-0045 §7.2.3, §7.7):
   * occupants other than `except` see it with the real JID when they may (§7.2.5); the
   * occupant's own sessions get it with 110 and `codes`. Presence of a role not in
   * `presencebroadcast` goes to its own sessions only.
   */
  private broadcastPresence(occupant: Occupant, codes: number[], except?: Occupant, opts: Parameters<Room['presenceOf']>[1] = { jid: false }): void {
    if (this.config.presenceBroadcast.includes(opts.role ?? occupant.role)) {
      this.toViewers(occupant, except, (jid) => this.presenceOf(occupant, { ...opts, jid, codes }));
    }
    if (except !== occupant) {
      const self = this.presenceOf(occupant, { ...opts, jid: true, codes: [S.SELF, ...codes] });
      this.sendToOccupant(self, occupant.jid, occupant);
    }
  }

  /** A session leaves (XEP-0045 §7.14); the occupant leaves with its last session. */
  private leave(occupant: Occupant, from: JID, presence: XmlElement | null, codes: number[] = []): void {
    const key = from.toString();
    const session = occupant.sessions.get(key);
    if (!session) return;
    this.bySession.delete(key);
    occupant.sessions.delete(key);
    if (occupant.sessions.size > 0) {
      // One of several sessions left (§7.2.10): only it is told; the others stay in.
      this.sendTo(this.presenceOf(occupant, { jid: true, codes: [S.SELF, ...codes], unavailable: presence }), occupant.jid, from);
      return;
    }
    occupant.sessions.set(key, session); // for the unavailable presence's jid
    const role = occupant.role;
    occupant.role = 'none';
    this.occupants.delete(occupant.key);
    this.broadcastUnavailable(occupant, codes, presence, {}, role);
    occupant.sessions.delete(key);
    this.afterExit();
  }

  /**
   * Unavailable presence of an occupant who is no longer in the room (already removed from
   * the occupant map) to everyone left and to the occupant itself (XEP-0045 §7.14, §8.2, §9.1).
   */
  private broadcastUnavailable(
    occupant: Occupant,
    codes: number[],
    presence: XmlElement | null,
    extra: { actor?: string; reason?: string; affiliation?: Affiliation; destroy?: XmlElement },
    formerRole: Role,
  ): void {
    const opts = { unavailable: presence, role: 'none' as Role, ...extra };
    if (this.config.presenceBroadcast.includes(formerRole)) {
      this.toViewers(occupant, undefined, (jid) => this.presenceOf(occupant, { ...opts, jid, codes }));
    }
    const self = this.presenceOf(occupant, { ...opts, jid: true, codes: [S.SELF, ...codes] });
    for (const s of occupant.sessions.values()) {
      this.bySession.delete(s.jid.toString());
      this.sendTo(self, occupant.jid, s.jid);
    }
  }

  /** After an occupant left: a temporary room left empty is destroyed (XEP-0045 §10.1); an unconfigured one too. */
  private afterExit(): void {
    if (this.destroyed) return;
    if (this.occupants.size === 0 && (!this.config.persistent || this.locked)) {
      this.destroyed = true;
      this.host.gone(this);
    }
  }

  /** Removes an occupant whose client bounced a stanza (XEP-0045 §18.1.2, status 333 of §14.1). */
  private removeGhost(occupant: Occupant, from: JID, stanza: XmlElement): void {
    const condition = stanzaErrorCondition(stanza);
    if (stanza.name === 'message' && (condition === undefined || !GHOST_ERRORS.has(condition))) return;
    this.leave(occupant, from, null, [S.ERROR]);
  }

  /** Nickname change (XEP-0045 §7.6): conflict checks, then 303 from the old nick and presence from the new one. */
  private changeNick(occupant: Occupant, stanza: XmlElement, from: JID, requested: string): void {
    let nick: string;
    try {
      nick = nickname(requested);
    } catch (err) {
      this.host.bounce(stanza, new StanzaError('jid-malformed', `nickname: ${err instanceof PrecisError ? err.message : 'not valid'} (RFC 8266)`));
      return;
    }
    const key = this.keyOf(nick);
    const holder = this.occupants.get(key);
    if (holder && holder !== occupant) {
      this.host.bounce(stanza, new StanzaError('conflict', 'that nickname is in use'));
      return;
    }
    for (const [jid, e] of this.affiliations) {
      if (e.nick !== null && this.keyOf(e.nick) === key && jid !== occupant.bare.toString()) {
        this.host.bounce(stanza, new StanzaError('conflict', 'that nickname is reserved by another user'));
        return;
      }
    }
    if (occupant.sessions.size > 1) {
      this.host.bounce(stanza, new StanzaError('not-acceptable', 'this nickname is used from several sessions; leave with the others first'));
      return;
    }
    occupant.setSession({ jid: from, presence: cleanPresence(stanza) });
    // §7.6.3: unavailable from the old occupant JID with the new nick and 303 …
    this.broadcastPresenceAs(occupant, { unavailable: occupant.current.presence, newNick: nick, codes: [S.NICK_CHANGE] });
    this.occupants.delete(occupant.key);
    occupant.jid = this.jid.withResource(nick);
    occupant.key = key;
    this.occupants.set(key, occupant);
    // … then available from the new one (210 when the service changed what was asked).
    this.broadcastPresence(occupant, nick !== requested ? [S.NICK_MODIFIED] : []);
  }

  /** Presence of a still-present occupant with special options (the 303 of a nick change) to all, self with 110. */
  private broadcastPresenceAs(occupant: Occupant, opts: { unavailable: XmlElement; newNick: string; codes: number[] }): void {
    const make = (jid: boolean, codes: number[]) => this.presenceOf(occupant, { jid, codes, unavailable: opts.unavailable, newNick: opts.newNick });
    if (this.config.presenceBroadcast.includes(occupant.role)) this.toViewers(occupant, undefined, (jid) => make(jid, opts.codes));
    this.sendToOccupant(make(true, [S.SELF, ...opts.codes]), occupant.jid, occupant);
  }

  /**
   * Sends a presence of `occupant` to every other occupant but `except`: with the real JID to
   * those who may see it (a non-anonymous room, or moderators, §7.2.5), without to the rest.
   * `make(withJid)` builds each variant once, whatever the number of recipients.
   */
  private toViewers(occupant: Occupant, except: Occupant | undefined, make: (withJid: boolean) => XmlElement): void {
    let withJid: XmlElement | undefined;
    let withoutJid: XmlElement | undefined;
    for (const other of this.occupants.values()) {
      if (other === occupant || other === except) continue;
      const p = this.config.whois === 'anyone' || other.role === 'moderator' ? (withJid ??= make(true)) : (withoutJid ??= make(false));
      this.sendToOccupant(p, occupant.jid, other);
    }
  }


  // ---------------------------------------------------------------------------
  // Messages (XEP-0045 §7.4, §7.5, §7.8, §8.1, §8.6)
  // ---------------------------------------------------------------------------

  private onMessage(stanza: XmlElement, from: JID, to: JID): void {
    const type = stanza.attrs.type ?? 'normal';
    const occupant = this.bySession.get(from.toString());
    if (type === 'error') {
      if (occupant) this.removeGhost(occupant, from, stanza);
      return;
    }
    if (to.resource !== '') {
      this.privateMessage(stanza, from, to, occupant, type);
      return;
    }
    if (type === 'groupchat') {
      if (!occupant) {
        this.host.bounce(stanza, new StanzaError('not-acceptable', 'only occupants may send messages to the room (XEP-0045 §7.4)'));
        return;
      }
      this.groupchat(stanza, occupant);
      return;
    }
    const userX = stanza.getChild('x', NS.MUC_USER);
    if (userX?.getChild('invite')) return this.invite(stanza, from, occupant, userX);
    if (userX?.getChild('decline')) return this.decline(stanza, from, userX);
    const form = stanza.getChild('x', NS.DATA_FORMS);
    if (form) return this.voiceRequestForm(stanza, from, occupant, form);
    this.host.bounce(stanza, new StanzaError('bad-request', "messages to the room are of type 'groupchat' (XEP-0045 §17.2)"));
  }

  /** A groupchat message: subject change (§8.1) or a message to all occupants (§7.4). */
  private groupchat(stanza: XmlElement, occupant: Occupant): void {
    const subject = stanza.getChild('subject');
    const hasBody = stanza.getChild('body') !== undefined;
    if (subject && !hasBody) {
      if (!(occupant.role === 'moderator' || (this.config.changeSubject && occupant.role === 'participant'))) {
        this.host.bounce(stanza, new StanzaError('forbidden', 'you may not change the subject of this room (XEP-0045 §8.1)'));
        return;
      }
      this.subject = { text: subject.text(), nick: occupant.nick, stamp: Date.now() };
      this.host.save(this);
    } else if (occupant.role === 'visitor') {
      // §7.4 / §17.2: visitors of a moderated room have no voice.
      this.host.bounce(stanza, new StanzaError('forbidden', 'you have no voice in this moderated room'));
      return;
    }
    const now = Date.now();
    const id = newStanzaId(now);
    const m = new XmlElement('message', stanza.ns, { from: occupant.jid.toString(), type: 'groupchat' });
    if (stanza.attrs.id !== undefined) m.attrs.id = stanza.attrs.id; // XEP-0045 §7.4: reflected with the sender's id.
    if (stanza.attrs['xml:lang'] !== undefined) m.attrs['xml:lang'] = stanza.attrs['xml:lang'];
    for (const c of stanza.children) {
      if (typeof c === 'string') continue;
      // XEP-0359 §3.1 / XEP-0421 §4: ids a client forged in the room's name are removed.
      if (c.name === 'stanza-id' && c.ns === NS.SID && c.attrs.by === this.jid.toString()) continue;
      if (c.name === 'occupant-id' && c.ns === NS.OCCUPANT_ID) continue;
      m.children.push(c);
    }
    m.children.push(xml('occupant-id', { xmlns: NS.OCCUPANT_ID, id: occupant.occupantId }));
    m.children.push(xml('stanza-id', { xmlns: NS.SID, id, by: this.jid.toString() }));
    for (const other of this.occupants.values()) this.sendToOccupant(m, occupant.jid, other);
    if (hasBody) {
      const entry: HistoryEntry = { stanza: m, stamp: now, id, nick: occupant.nick, sender: occupant.bare.toString(), size: 0 };
      this.history.push(entry);
      if (this.history.length > this.host.limits.historyLength) this.history.splice(0, this.history.length - this.host.limits.historyLength);
      if (this.config.persistent) this.host.archive(this, entry);
    }
  }

  /** A private message to one occupant (XEP-0045 §7.5), subject to `allowpm`. */
  private privateMessage(stanza: XmlElement, from: JID, to: JID, sender: Occupant | undefined, type: string): void {
    if (!sender) {
      this.host.bounce(stanza, new StanzaError('not-acceptable', 'only occupants may send private messages (XEP-0045 §7.5)'));
      return;
    }
    if (type === 'groupchat') {
      this.host.bounce(stanza, new StanzaError('bad-request', "a private message is not of type 'groupchat' (XEP-0045 §7.5)"));
      return;
    }
    const pm = this.config.allowPm;
    const allowed =
      pm === 'anyone' || (pm === 'participants' && (sender.role === 'participant' || sender.role === 'moderator')) || (pm === 'moderators' && sender.role === 'moderator');
    if (!allowed) {
      this.host.bounce(stanza, new StanzaError('forbidden', 'private messages are not allowed in this room'));
      return;
    }
    const target = this.occupants.get(this.keyOf(to.resource));
    if (!target) {
      this.host.bounce(stanza, new StanzaError('item-not-found', `nobody is called '${to.resource}' in this room`));
      return;
    }
    const m = new XmlElement('message', stanza.ns, { ...stanza.attrs, from: sender.jid.toString() });
    delete m.attrs.to;
    m.children = stanza.children.filter((c) => typeof c === 'string' || !(c.name === 'x' && c.ns === NS.MUC_USER));
    m.children.push(xml('x', { xmlns: NS.MUC_USER }));
    this.sendToOccupant(m, sender.jid, target);
  }

  /** Mediated invitation (XEP-0045 §7.8.2). In a members-only room the invitee becomes a member (§9.3 note). */
  private invite(stanza: XmlElement, from: JID, occupant: Occupant | undefined, userX: XmlElement): void {
    if (!occupant) {
      this.host.bounce(stanza, new StanzaError('not-acceptable', 'only occupants may invite'));
      return;
    }
    const aff = this.affiliationOf(occupant.bare);
    const privileged = aff === 'owner' || aff === 'admin';
    if (this.config.membersOnly && !privileged && !this.config.allowInvites) {
      this.host.bounce(stanza, new StanzaError('forbidden', 'only admins may invite to this members-only room'));
      return;
    }
    const invites = userX.getChildren('invite');
    const targets: JID[] = [];
    for (const inv of invites) {
      const t = inv.attrs.to !== undefined ? JID.tryParse(inv.attrs.to) : null;
      if (!t) {
        this.host.bounce(stanza, new StanzaError('jid-malformed', "an invitation needs a valid 'to' JID"));
        return;
      }
      targets.push(t);
    }
    let changed = false;
    invites.forEach((inv, i) => {
      const target = targets[i]!;
      if (this.config.membersOnly && this.affiliationOf(target.bare()) === 'none') {
        this.affiliations.set(target.bareString(), { affiliation: 'member', nick: null, reason: null });
        changed = true;
      }
      const reason = inv.getChildText('reason');
      const x = xml(
        'x',
        { xmlns: NS.MUC_USER },
        xml('invite', { from: from.bareString() }, reason !== undefined ? xml('reason', null, reason) : null),
        this.config.passwordProtected ? xml('password', null, this.config.password) : null,
      );
      const body = `${from.bareString()} invites you to the room ${this.jid.toString()}${reason ? `: ${reason}` : ''}`;
      const m = xml('message', { from: this.jid.toString(), id: stanza.attrs.id ?? randomBytes(6).toString('hex') }, x, xml('body', null, body));
      this.sendTo(m, this.jid, target);
    });
    if (changed) this.host.save(this);
  }

  /** A declined invitation, passed on to the inviter (XEP-0045 §7.8.2). */
  private decline(stanza: XmlElement, from: JID, userX: XmlElement): void {
    const d = userX.getChild('decline')!;
    const target = d.attrs.to !== undefined ? JID.tryParse(d.attrs.to) : null;
    if (!target) {
      this.host.bounce(stanza, new StanzaError('jid-malformed', "a decline needs a valid 'to' JID"));
      return;
    }
    const reason = d.getChildText('reason');
    const m = xml(
      'message',
      { from: this.jid.toString(), id: stanza.attrs.id ?? randomBytes(6).toString('hex') },
      xml('x', { xmlns: NS.MUC_USER }, xml('decline', { from: from.bareString() }, reason !== undefined ? xml('reason', null, reason) : null)),
    );
    this.sendTo(m, this.jid, target);
  }

  /** Voice request from a visitor (XEP-0045 §7.13), or a moderator's approval of one (§8.6). */
  private voiceRequestForm(stanza: XmlElement, from: JID, occupant: Occupant | undefined, x: XmlElement): void {
    const form = parseDataForm(x);
    if (formTypeOf(form) !== NS.MUC_REQUEST) {
      this.host.bounce(stanza, new StanzaError('bad-request', `only ${NS.MUC_REQUEST} forms are sent to the room`));
      return;
    }
    if (!occupant) {
      this.host.bounce(stanza, new StanzaError('not-acceptable', 'only occupants may request voice'));
      return;
    }
    if (form.type === 'submit' && occupant.role === 'moderator' && fieldValues(form, 'muc#request_allow') !== undefined) {
      // §8.6: the moderator's answer.
      const allow = parseFormBoolean(fieldValues(form, 'muc#request_allow')?.[0], 'muc#request_allow');
      const nick = fieldValues(form, 'muc#roomnick')?.[0];
      const target = nick !== undefined ? this.occupants.get(this.keyOf(nick)) : undefined;
      if (allow && target && target.role === 'visitor') {
        target.role = 'participant';
        this.broadcastPresence(target, []);
      }
      return;
    }
    if (occupant.role !== 'visitor') return; // Has voice already.
    const request = dataFormElement({
      type: 'form',
      title: 'Voice request',
      instructions: ['To approve this request for voice, select the "Grant voice to this person?" checkbox and click OK. To skip this request, click the cancel button.'],
      fields: [
        { var: 'FORM_TYPE', type: 'hidden', values: [NS.MUC_REQUEST] },
        { var: 'muc#role', type: 'list-single', label: 'Requested role', values: ['participant'] },
        { var: 'muc#jid', type: 'jid-single', label: 'User ID', values: [from.toString()] },
        { var: 'muc#roomnick', type: 'text-single', label: 'Room Nickname', values: [occupant.nick] },
        { var: 'muc#request_allow', type: 'boolean', label: 'Grant voice to this person?', values: ['false'] },
      ],
    });
    for (const other of this.occupants.values()) {
      if (other.role !== 'moderator') continue;
      this.sendToOccupant(xml('message', { from: this.jid.toString(), id: randomBytes(6).toString('hex') }, request), this.jid, other);
    }
  }

  // ---------------------------------------------------------------------------
  // IQ (XEP-0045 §6.4, §8, §9, §10, §17.4; XEP-0410)
  // ---------------------------------------------------------------------------

  private onIq(stanza: XmlElement, from: JID, to: JID): void {
    const type = stanza.attrs.type;
    if (to.resource !== '') {
      this.occupantIq(stanza, from, to, type);
      return;
    }
    if (type !== 'get' && type !== 'set') return;
    const payload = stanza.firstElement()!;
    const result = (el: XmlElement | null) => this.sendTo(xml('iq', { type: 'result', id: stanza.attrs.id, from: this.jid.toString() }, el), this.jid, from);
    try {
      switch (payload.ns) {
        case NS.DISCO_INFO:
          if (type !== 'get') throw new StanzaError('bad-request', 'disco#info is a get');
          return result(this.discoInfo(payload.attrs.node, from));
        case NS.DISCO_ITEMS:
          if (type !== 'get') throw new StanzaError('bad-request', 'disco#items is a get');
          return result(xml('query', { xmlns: NS.DISCO_ITEMS }));
        case NS.PING:
          return result(null);
        case NS.MUC_ADMIN:
          return result(type === 'get' ? this.adminGet(payload, from) : this.adminSet(payload, from));
        case NS.MUC_OWNER:
          return result(type === 'get' ? this.ownerGet(from) : this.ownerSet(payload, from));
        default:
          throw new StanzaError('service-unavailable');
      }
    } catch (err) {
      if (err instanceof StanzaError) this.host.bounce(stanza, err);
      else throw err;
    }
  }

  /** Room disco#info (XEP-0045 §6.4), the reserved-nick node (§7.12) and the #traffic node (§17.1.1). */
  private discoInfo(node: string | undefined, from: JID): XmlElement {
    if (node === RESERVED_NICK_NODE) {
      const nick = this.affiliations.get(from.bareString())?.nick;
      return xml('query', { xmlns: NS.DISCO_INFO, node }, nick ? xml('identity', { category: 'conference', type: 'text', name: nick }) : null);
    }
    if (node === 'http://jabber.org/protocol/muc#traffic') throw new StanzaError('service-unavailable', 'all extensions pass through this room');
    if (node !== undefined) throw new StanzaError('item-not-found', `no node '${node}'`);
    const features = [
      NS.MUC,
      NS.MUC_STABLE_ID,
      NS.MUC_SELF_PING,
      NS.MUC_REQUEST,
      NS.OCCUPANT_ID,
      NS.SID,
      NS.DISCO_INFO,
      NS.DISCO_ITEMS,
      NS.PING,
      ...roomFeatures(this.config),
    ].sort();
    const contacts = this.config.whois === 'anyone' ? this.listAffiliation('owner') : [];
    return xml(
      'query',
      { xmlns: NS.DISCO_INFO },
      xml('identity', { category: 'conference', type: 'text', name: this.config.name || this.name }),
      features.map((f) => xml('feature', { var: f })),
      roomInfoForm(this.config, this.occupants.size, this.subject?.text ?? '', contacts),
    );
  }

  /** Iq to an occupant JID: XEP-0410 self-ping answered by the room, others forwarded (§17.4 rule 3). */
  private occupantIq(stanza: XmlElement, from: JID, to: JID, type: string | undefined): void {
    if (type === 'result' || type === 'error') {
      const id = stanza.attrs.id;
      const p = id !== undefined ? this.pendingIq.get(id) : undefined;
      if (!p || p.realTarget !== from.toString() && p.realTarget !== from.bareString()) return;
      this.pendingIq.delete(id!);
      clearTimeout(p.timer);
      const reply = new XmlElement('iq', stanza.ns, { ...stanza.attrs, id: p.id, from: p.target.toString(), to: p.requester.toString() });
      reply.children = stanza.children;
      this.host.send(reply, p.target, p.requester);
      return;
    }
    const sender = this.bySession.get(from.toString());
    const target = this.occupants.get(this.keyOf(to.resource));
    const payload = stanza.firstElement()!;
    if (!sender) {
      this.host.bounce(stanza, new StanzaError('not-acceptable', 'you are not in this room (XEP-0410)'));
      return;
    }
    if (target === sender && payload.is('ping', NS.PING)) {
      // XEP-0410 §3.2: the room answers a self-ping itself.
      this.sendTo(xml('iq', { type: 'result', id: stanza.attrs.id, from: to.toString() }), to, from);
      return;
    }
    if (!target) {
      this.host.bounce(stanza, new StanzaError('item-not-found', `nobody is called '${to.resource}' in this room`));
      return;
    }
    // vCards belong to the account (XEP-0054 §3.2), anything else to the occupant's session.
    const real = payload.is('vCard', 'vcard-temp') ? target.bare : target.current.jid;
    const id = randomBytes(9).toString('base64url');
    const timer = setTimeout(() => this.pendingIq.delete(id), IQ_FORWARD_TIMEOUT);
    timer.unref();
    this.pendingIq.set(id, { requester: from, id: stanza.attrs.id!, target: target.jid, realTarget: real.toString(), timer });
    const fwd = new XmlElement('iq', stanza.ns, { ...stanza.attrs, id, from: sender.jid.toString(), to: real.toString() });
    fwd.children = stanza.children;
    this.host.send(fwd, sender.jid, real);
  }

  // --- muc#admin: roles and affiliations (XEP-0045 §8, §9) ---

  private requireOccupantOrAffiliation(from: JID): { occupant: Occupant | undefined; affiliation: Affiliation } {
    return { occupant: this.bySession.get(from.toString()), affiliation: this.affiliationOf(from.bare()) };
  }

  /** Lists by role (§8.5, §9.8) or affiliation (§8.5, §9.5, §9.8, §10.5, §10.8). */
  private adminGet(query: XmlElement, from: JID): XmlElement {
    const item = query.getChild('item');
    if (!item) throw new StanzaError('bad-request', 'ask for a list with <item role/> or <item affiliation/>');
    const { occupant, affiliation } = this.requireOccupantOrAffiliation(from);
    const out = xml('query', { xmlns: NS.MUC_ADMIN });
    const role = item.attrs.role;
    const aff = item.attrs.affiliation;
    if (role !== undefined) {
      if (role !== 'moderator' && role !== 'participant' && role !== 'visitor') throw new StanzaError('bad-request', `'${role}' is not a role`);
      if (occupant?.role !== 'moderator') throw new StanzaError('forbidden', 'only moderators may list roles');
      for (const o of this.occupants.values()) {
        if (o.role === role) out.append(xml('item', { nick: o.nick, role: o.role, affiliation: this.affiliationOf(o.bare), jid: o.current.jid.toString() }));
      }
      return out;
    }
    if (aff === 'owner' || aff === 'admin' || aff === 'member' || aff === 'outcast') {
      const privileged = affiliation === 'owner' || affiliation === 'admin';
      const memberListAllowed = aff === 'member' && occupant !== undefined && this.config.getMemberList.includes(occupant.role);
      if (!privileged && !memberListAllowed) throw new StanzaError('forbidden', `you may not see the ${aff} list`);
      for (const [jid, e] of this.affiliations) {
        if (e.affiliation !== aff) continue;
        out.append(xml('item', { jid, affiliation: aff, nick: aff !== 'outcast' ? (e.nick ?? undefined) : undefined }, e.reason ? xml('reason', null, e.reason) : null));
      }
      return out;
    }
    throw new StanzaError('bad-request', 'ask for a list with <item role/> or <item affiliation/>');
  }

  /**
   * Role and affiliation changes (§8.2–§8.5, §9.1–§9.8, §10.3–§10.8). Every item is checked
   * before any is applied (all or nothing); then presence goes out for each occupant changed.
   */
  private adminSet(query: XmlElement, from: JID): null {
    const items = query.getChildren('item');
    if (items.length === 0) throw new StanzaError('bad-request', 'no <item/> to change');
    const actor = this.bySession.get(from.toString());
    const actorAff = this.affiliationOf(from.bare());
    type Change =
      | { kind: 'role'; target: Occupant; role: Role; reason?: string }
      | { kind: 'affiliation'; jid: JID; affiliation: Affiliation; reason?: string; nick?: string };
    const changes: Change[] = [];
    const owners = new Set(this.listAffiliation('owner'));
    for (const item of items) {
      const reason = item.getChildText('reason');
      const role = item.attrs.role;
      const aff = item.attrs.affiliation;
      // §17.4 rule 4: an item changes a role or an affiliation, never both.
      if (role !== undefined && aff !== undefined) throw new StanzaError('bad-request', 'change either the role or the affiliation of an item, not both');
      if (role !== undefined) {
        if (role !== 'moderator' && role !== 'participant' && role !== 'visitor' && role !== 'none') throw new StanzaError('bad-request', `'${role}' is not a role`);
        if (!actor || actor.role !== 'moderator') throw new StanzaError('forbidden', 'only moderators may change roles');
        const nick = item.attrs.nick;
        if (nick === undefined) throw new StanzaError('bad-request', "a role change names the occupant by 'nick'");
        const target = this.occupants.get(this.keyOf(nick));
        if (!target) throw new StanzaError('item-not-found', `nobody is called '${nick}' in this room`);
        const targetAff = this.affiliationOf(target.bare);
        if (role === 'moderator' || target.role === 'moderator') {
          // §8.2–8.4 / §9.6–9.7: granting or revoking moderator is for admins and owners.
          if (actorAff !== 'admin' && actorAff !== 'owner') throw new StanzaError('not-allowed', 'only admins and owners may grant or revoke moderator status');
        }
        if (role !== 'moderator' && (targetAff === 'admin' || targetAff === 'owner') && target !== actor) {
          // §8.2 / §8.5: admins and owners cannot be kicked, devoiced or demoted.
          throw new StanzaError('not-allowed', `the ${targetAff} ${target.nick} keeps their role`);
        }
        if (AFFILIATION_RANK[targetAff] > AFFILIATION_RANK[actorAff]) throw new StanzaError('not-allowed', 'you may not change the role of someone with a higher affiliation');
        changes.push({ kind: 'role', target, role: role as Role, reason });
        continue;
      }
      if (aff !== undefined) {
        if (aff !== 'owner' && aff !== 'admin' && aff !== 'member' && aff !== 'none' && aff !== 'outcast') throw new StanzaError('bad-request', `'${aff}' is not an affiliation`);
        const jidAttr = item.attrs.jid;
        const jid = jidAttr !== undefined ? JID.tryParse(jidAttr) : null;
        if (!jid) throw new StanzaError('bad-request', "an affiliation change names the user by 'jid'");
        const bare = jid.bare();
        const current = this.affiliationOf(bare);
        if (actorAff !== 'owner' && actorAff !== 'admin') throw new StanzaError('forbidden', 'only admins and owners may change affiliations');
        // §10.3–10.8: only owners grant or revoke owner and admin status.
        const touchesHigh = aff === 'owner' || aff === 'admin' || current === 'owner' || current === 'admin';
        if (touchesHigh && actorAff !== 'owner') throw new StanzaError(current === 'owner' || current === 'admin' ? 'not-allowed' : 'forbidden', 'only owners may change owner and admin status');
        if (this.host.isServiceAdmin(bare) && aff !== 'owner') throw new StanzaError('not-allowed', 'a service administrator owns every room');
        if (current === 'owner' && aff !== 'owner') {
          owners.delete(bare.toString());
          // §10.6: the last owner stays.
          if (owners.size === 0) throw new StanzaError('conflict', 'a room keeps at least one owner');
        }
        if (aff === 'owner') owners.add(bare.toString());
        changes.push({ kind: 'affiliation', jid: bare, affiliation: aff, reason, nick: item.attrs.nick });
        continue;
      }
      throw new StanzaError('bad-request', 'an item has a role or an affiliation');
    }
    const actorNick = actor?.nick;
    let affiliationsChanged = false;
    for (const c of changes) {
      if (c.kind === 'role') this.applyRole(c.target, c.role, actorNick, c.reason);
      else {
        this.applyAffiliation(c.jid, c.affiliation, actorNick, c.reason, c.nick);
        affiliationsChanged = true;
      }
    }
    if (affiliationsChanged) this.host.save(this);
    this.afterExit();
    return null;
  }

  /** Applies a role change and tells the room (kick §8.2 with 307, voice §8.3–8.4, moderator §9.6–9.7). */
  private applyRole(target: Occupant, role: Role, actor?: string, reason?: string): void {
    if (!this.occupants.has(target.key)) return;
    if (role === 'none') {
      this.evict(target, [S.KICKED], { actor, reason });
      return;
    }
    target.role = role;
    this.broadcastPresence(target, [], undefined, { jid: false, actor, reason });
  }

  /** Removes an occupant from the room with the given status codes (kick, ban, membership loss, shutdown). */
  private evict(target: Occupant, codes: number[], extra: { actor?: string; reason?: string; affiliation?: Affiliation; destroy?: XmlElement }): void {
    const role = target.role;
    target.role = 'none';
    this.occupants.delete(target.key);
    this.broadcastUnavailable(target, codes, null, extra, role);
    target.sessions.clear();
  }

  /** Applies an affiliation change (§9.1 ban with 301, §9.3–9.4 membership with 321 in members-only rooms, §10.3–10.8). */
  private applyAffiliation(bare: JID, affiliation: Affiliation, actor?: string, reason?: string, nick?: string): void {
    const key = bare.toString();
    if (affiliation === 'none') this.affiliations.delete(key);
    else {
      const prev = this.affiliations.get(key);
      this.affiliations.set(key, { affiliation, nick: nick ?? prev?.nick ?? null, reason: reason ?? null });
    }
    for (const o of [...this.occupants.values()]) {
      if (!o.bare.equals(bare)) continue;
      if (affiliation === 'outcast') {
        this.evict(o, [S.BANNED], { actor, reason, affiliation });
        continue;
      }
      if (affiliation === 'none' && this.config.membersOnly) {
        this.evict(o, [S.AFFILIATION_CHANGE], { actor, reason, affiliation });
        continue;
      }
      o.role = this.defaultRole(affiliation);
      this.broadcastPresence(o, [], undefined, { jid: false, actor, reason });
    }
  }

  // --- muc#owner: configuration and destruction (XEP-0045 §10) ---

  private requireOwner(from: JID): void {
    if (this.affiliationOf(from.bare()) !== 'owner') throw new StanzaError('forbidden', 'only owners may configure or destroy the room');
  }

  private ownerGet(from: JID): XmlElement {
    this.requireOwner(from);
    return xml(
      'query',
      { xmlns: NS.MUC_OWNER },
      configForm(this.config, this.listAffiliation('owner'), this.listAffiliation('admin'), this.host.limits),
    );
  }

  private ownerSet(query: XmlElement, from: JID): null {
    this.requireOwner(from);
    const destroy = query.getChild('destroy');
    if (destroy) {
      this.destroy(destroy);
      return null;
    }
    const x = query.getChild('x', NS.DATA_FORMS);
    if (!x) throw new StanzaError('bad-request', 'submit a configuration form or a <destroy/> (XEP-0045 §10)');
    const form = parseDataForm(x);
    if (form.type === 'cancel') {
      // §10.1.3: cancelling the initial configuration destroys the new room.
      if (this.locked) this.destroy(null);
      return null;
    }
    if (form.type !== 'submit') throw new StanzaError('bad-request', "the configuration form is submitted with type 'submit'");
    const submission = applyConfigForm(form, this.config, this.host.limits);
    if (submission.owners !== undefined && submission.owners.length === 0) throw new StanzaError('conflict', 'a room keeps at least one owner');
    const before = this.config;
    this.config = submission.config;
    const wasLocked = this.locked;
    this.locked = false;
    const setList = (aff: 'owner' | 'admin', list: string[] | undefined) => {
      if (list === undefined) return;
      for (const jid of this.listAffiliation(aff)) if (!list.includes(jid)) this.applyAffiliation(JID.parse(jid), 'member');
      for (const jid of list) if (this.affiliations.get(jid)?.affiliation !== aff) this.applyAffiliation(JID.parse(jid), aff);
    };
    setList('owner', submission.owners);
    setList('admin', submission.admins);
    if (!wasLocked) this.announceConfigChange(before);
    if (this.config.membersOnly && !before.membersOnly) {
      // §9.3 / §10.2: becoming members-only removes those without membership (322).
      for (const o of [...this.occupants.values()]) if (this.affiliationOf(o.bare) === 'none') this.evict(o, [S.MEMBERS_ONLY], { affiliation: 'none' });
    }
    this.host.save(this);
    if (this.occupants.size === 0 && !this.config.persistent) this.afterExit();
    return null;
  }

  /** The status message of a configuration change (XEP-0045 §10.2.1): 104, and 170–173 for logging and anonymity. */
  private announceConfigChange(before: RoomConfig): void {
    const codes: number[] = [S.CONFIG_CHANGED];
    if (before.logging !== this.config.logging) codes.push(this.config.logging ? S.LOGGING : S.LOGGING_OFF);
    if (before.whois !== this.config.whois) codes.push(this.config.whois === 'anyone' ? S.NOW_NON_ANONYMOUS : S.NOW_SEMI_ANONYMOUS);
    const m = xml('message', { from: this.jid.toString(), type: 'groupchat', id: randomBytes(6).toString('hex') }, xml('x', { xmlns: NS.MUC_USER }, codes.map((code) => xml('status', { code }))));
    for (const o of this.occupants.values()) this.sendToOccupant(m, this.jid, o);
  }

  /**
   * Destroys the room (XEP-0045 §10.9): every occupant gets unavailable presence with the
   * `<destroy/>` (alternate venue, reason, password), and the room leaves storage.
   */
  destroy(request: XmlElement | null, codes: number[] = []): void {
    const d = xml('destroy', { jid: request?.attrs.jid }, request?.getChild('reason') ? xml('reason', null, request.getChildText('reason')!) : null);
    const password = request?.getChildText('password');
    if (password !== undefined) d.append(xml('password', null, password));
    for (const o of [...this.occupants.values()]) this.evict(o, codes, { affiliation: 'none', destroy: d });
    for (const p of this.pendingIq.values()) clearTimeout(p.timer);
    this.pendingIq.clear();
    this.destroyed = true;
    this.host.gone(this);
  }

  /** Tells every occupant the service is shutting down (XEP-0045 §16.2, status 332). */
  shutdown(): void {
    for (const o of [...this.occupants.values()]) this.evict(o, [S.SHUTDOWN], {});
    for (const p of this.pendingIq.values()) clearTimeout(p.timer);
    this.pendingIq.clear();
  }

  // ---------------------------------------------------------------------------
  // Creation (XEP-0045 §10.1)
  // ---------------------------------------------------------------------------

  /** A new room, entered by its creator: locked until configured, the creator its owner (status 201). */
  create(stanza: XmlElement, from: JID, nick: string): void {
    this.affiliations.set(from.bareString(), { affiliation: 'owner', nick: null, reason: null });
    this.locked = true;
    this.join(stanza, from, nick, stanza.getChild('x', NS.MUC), true);
    if (!this.occupied) {
      this.destroyed = true;
      this.host.gone(this);
    }
  }

  // ---------------------------------------------------------------------------
  // Sending
  // ---------------------------------------------------------------------------

  private sendTo(stanza: XmlElement, from: JID, to: JID): void {
    stanza.attrs.to = to.toString();
    this.host.send(stanza, from, to);
  }

  /** Sends `base` (not changed) to every session of `occupant`. */
  private sendToOccupant(base: XmlElement, from: JID, occupant: Occupant): void {
    for (const s of occupant.sessions.values()) this.host.send(base.addressedTo(s.jid.toString()), from, s.jid);
  }
}
