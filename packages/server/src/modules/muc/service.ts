import { JID, NS, StanzaError, XmlElement, xml } from '@parley/xmpp';
import type { Router } from '../../core/router.ts';
import type { Logger } from '../../core/logger.ts';
import type { ParleyConfig } from '../../config/index.ts';
import type { ArchivedRoomMessage, MucStore } from '../../storage/index.ts';
import { parseStored } from '../stored-xml.ts';
import { defaultRoomConfig, restoreRoomConfig, type ConfigLimits, type RoomConfig } from './config.ts';
import { Room, type AffiliationEntry, type RoomHost, type RoomSubject } from './room.ts';

/** What is stored in `muc_rooms.config`: the room configuration and the room's own keys. */
interface StoredConfig {
  config: RoomConfig;
  occupantIdKey: string;
}

/**
 * A multi-user chat service (XEP-0045) on its own domain, reached through the router like
 * any component: it owns the rooms, creates them on first entry (§10.1), keeps persistent
 * ones in storage (§10.2) and restores them at start, answers service discovery of the
 * service (§6.1–§6.3), and writes the archive of persistent rooms in batches, off the
 * delivery path.
 */
export class MucService implements RoomHost {
  readonly domain: string;
  readonly jid: JID;
  readonly limits: ConfigLimits;
  readonly groupchat10: boolean;
  private rooms = new Map<string, Room>();
  private admins: Set<string>;
  private archiveQueue: ArchivedRoomMessage[] = [];
  private archiveScheduled = false;
  /** Storage writes, chained so that they happen in order. */
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private opts: { domain: string; serverDomain: string; muc: ParleyConfig['modules']['muc']; router: Router; store: MucStore; log: Logger },
  ) {
    this.domain = opts.domain;
    this.jid = JID.parse(opts.domain);
    this.limits = { maxUsers: opts.muc.max_users, historyLength: opts.muc.history_length };
    this.groupchat10 = opts.muc.groupchat_1_0;
    this.admins = new Set(opts.muc.admins.map((j) => JID.parse(j).bareString()));
  }

  /** Loads the persistent rooms and their recent history from storage. */
  async load(): Promise<void> {
    const defaults = defaultRoomConfig(this.opts.muc);
    for (const row of await this.opts.store.rooms()) {
      try {
        const stored = JSON.parse(row.config) as Partial<StoredConfig>;
        const room = new Room(this, row.name, restoreRoomConfig(stored.config, { ...defaults, persistent: true }), {
          createdAt: row.createdAt,
          occupantIdKey: stored.occupantIdKey,
        });
        room.stored = true;
        room.subject = row.subject !== null ? (JSON.parse(row.subject) as RoomSubject) : null;
        for (const a of await this.opts.store.affiliations(row.name)) {
          room.affiliations.set(a.jid, { affiliation: a.affiliation, nick: a.nick, reason: a.reason });
        }
        for (const m of await this.opts.store.latest(row.name, this.limits.historyLength)) {
          room.history.push({ stanza: parseStored(m.stanza), stamp: m.stamp, id: m.id, nick: m.nick, sender: m.sender, size: 0 });
        }
        this.rooms.set(row.name, room);
      } catch (err) {
        this.opts.log.error({ err, room: row.name }, 'muc: a stored room could not be read; it stays in storage, unused');
      }
    }
  }

  /** Number of rooms in memory (persistent ones and occupied temporary ones). */
  get size(): number {
    return this.rooms.size;
  }

  /** A room by localpart. */
  room(name: string): Room | undefined {
    return this.rooms.get(name);
  }

  /** The component handler (ARCHITECTURE §2): every stanza to the service's domain. */
  handle(stanza: XmlElement, from: JID, to: JID): void {
    if (to.local === '') {
      this.serviceStanza(stanza, from, to);
      return;
    }
    const room = this.rooms.get(to.local);
    if (room) {
      room.handle(stanza, from, to);
      return;
    }
    // §7.2 / §10.1.1: available presence to an unknown room creates it, if allowed.
    if (stanza.name === 'presence' && stanza.attrs.type === undefined && to.resource !== '') {
      if (!stanza.getChild('x', NS.MUC) && !this.groupchat10) {
        // §7.2.20: without the MUC <x/> this is a desynchronized client, not a creation.
        this.kickNonOccupant(from, to);
        return;
      }
      if (!this.mayCreate(from)) {
        this.bounce(stanza, new StanzaError('not-allowed', 'you may not create rooms on this service'));
        return;
      }
      const created = new Room(this, to.local, defaultRoomConfig(this.opts.muc));
      this.rooms.set(to.local, created);
      created.create(stanza, from, to.resource);
      return;
    }
    if (stanza.name === 'presence' || stanza.attrs.type === 'error' || stanza.attrs.type === 'result') return;
    // §17.2 rule 3: the room does not exist.
    this.bounce(stanza, new StanzaError('item-not-found', `there is no room ${to.bareString()}`));
  }

  /**
   * The answer to presence without the MUC `<x/>` from somebody not in the room when
   * groupchat 1.0 entry is off (XEP-0045 §7.2.20): unavailable with 110, 307 and 333.
   */
  kickNonOccupant(from: JID, to: JID): void {
    const kick = xml(
      'presence',
      { from: to.toString(), to: from.toString(), type: 'unavailable' },
      xml(
        'x',
        { xmlns: NS.MUC_USER },
        xml('item', { affiliation: 'none', role: 'none' }, xml('reason', null, 'You are not in the room.')),
        [110, 307, 333].map((code) => xml('status', { code })),
      ),
    );
    this.send(kick, to, from);
  }

  private mayCreate(from: JID): boolean {
    switch (this.opts.muc.creation) {
      case 'anyone':
        return true;
      case 'local':
        return from.domain === this.opts.serverDomain || this.isServiceAdmin(from.bare());
      case 'admins':
        return this.isServiceAdmin(from.bare());
    }
  }

  /** Stanzas to the service itself: disco (XEP-0045 §6.1–§6.3) and ping. */
  private serviceStanza(stanza: XmlElement, from: JID, to: JID): void {
    if (stanza.name !== 'iq') {
      if (stanza.name === 'message' && stanza.attrs.type !== 'error') this.bounce(stanza, new StanzaError('service-unavailable'));
      return;
    }
    const type = stanza.attrs.type;
    if (type !== 'get' && type !== 'set') return;
    const payload = stanza.firstElement()!;
    let result: XmlElement | null;
    if (type === 'get' && payload.is('query', NS.DISCO_INFO) && payload.attrs.node === undefined) {
      result = xml(
        'query',
        { xmlns: NS.DISCO_INFO },
        xml('identity', { category: 'conference', type: 'text', name: this.opts.muc.name }),
        [NS.DISCO_INFO, NS.DISCO_ITEMS, NS.MUC, NS.MUC_STABLE_ID, NS.OCCUPANT_ID, NS.PING, NS.SID].sort().map((f) => xml('feature', { var: f })),
      );
    } else if (type === 'get' && payload.is('query', NS.DISCO_ITEMS) && payload.attrs.node === undefined) {
      // §6.3: the public rooms.
      const items: XmlElement[] = [];
      for (const room of this.rooms.values()) {
        if (!room.config.public || room.locked) continue;
        items.push(xml('item', { jid: room.jid.toString(), name: room.config.name || room.name }));
      }
      result = xml('query', { xmlns: NS.DISCO_ITEMS }, items);
    } else if (type === 'get' && payload.is('ping', NS.PING)) {
      result = null;
    } else if (payload.attrs.node !== undefined && (payload.ns === NS.DISCO_INFO || payload.ns === NS.DISCO_ITEMS)) {
      this.bounce(stanza, new StanzaError('item-not-found', `no node '${payload.attrs.node}'`));
      return;
    } else {
      this.bounce(stanza, new StanzaError('service-unavailable'));
      return;
    }
    const reply = xml('iq', { type: 'result', id: stanza.attrs.id, from: to.toString(), to: from.toString() }, result);
    this.send(reply, to, from);
  }

  // --- RoomHost ---

  send(stanza: XmlElement, from: JID, to: JID): void {
    this.opts.router.routeTo(stanza, from, to);
  }

  bounce(stanza: XmlElement, error: StanzaError): void {
    this.opts.router.bounce(stanza, error);
  }

  isServiceAdmin(bare: JID): boolean {
    return this.admins.has(bare.toString());
  }

  save(room: Room): void {
    const store = this.opts.store;
    if (room.config.persistent) {
      const config: StoredConfig = { config: room.config, occupantIdKey: room.occupantIdKey };
      const row = { name: room.name, config: JSON.stringify(config), subject: room.subject ? JSON.stringify(room.subject) : null, createdAt: room.createdAt };
      const affiliations = [...room.affiliations].map(([jid, e]: [string, AffiliationEntry]) => ({ jid, ...e }));
      room.stored = true;
      this.write(async () => {
        await store.saveRoom(row);
        await store.replaceAffiliations(room.name, affiliations);
      }, room);
    } else if (room.stored) {
      room.stored = false;
      this.write(() => store.deleteRoom(room.name), room);
    }
  }

  archive(room: Room, entry: Parameters<RoomHost['archive']>[1]): void {
    const stanza = entry.stanza.toString('');
    this.archiveQueue.push({ room: room.name, id: entry.id, stamp: entry.stamp, nick: entry.nick, sender: entry.sender, stanza });
    if (!this.archiveScheduled) {
      this.archiveScheduled = true;
      setImmediate(() => this.flushArchive());
    }
  }

  private flushArchive(): void {
    this.archiveScheduled = false;
    const batch = this.archiveQueue;
    if (batch.length === 0) return;
    this.archiveQueue = [];
    this.write(() => this.opts.store.append(batch), null);
  }

  gone(room: Room): void {
    if (this.rooms.get(room.name) === room) this.rooms.delete(room.name);
    if (room.stored) {
      room.stored = false;
      this.write(() => this.opts.store.deleteRoom(room.name), room);
    }
  }

  private write(fn: () => Promise<void>, room: Room | null): void {
    this.writes = this.writes.then(fn).catch((err: unknown) => {
      this.opts.log.error({ err, room: room?.name }, 'muc: storage write failed');
    });
  }

  /** Tells every occupant the service stops (status 332, XEP-0045 §16.2); rooms stay as they are. */
  shutdown(): void {
    for (const room of this.rooms.values()) room.shutdown();
  }

  /** Stops the service: {@link shutdown} for whoever is still in, then waits for pending storage writes. */
  async close(): Promise<void> {
    this.shutdown();
    this.flushArchive();
    await this.writes;
  }
}
