import type { Database } from './database.ts';

/** A stored persistent room (XEP-0045 §10.2). */
export interface StoredRoom {
  name: string;
  /** The room configuration, JSON (the MUC module owns its shape). */
  config: string;
  /** The subject, JSON, or `null`. */
  subject: string | null;
  /** ms since epoch. */
  createdAt: number;
}

/** A stored affiliation (XEP-0045 §5.2) of a bare JID. */
export interface StoredAffiliation {
  jid: string;
  affiliation: 'owner' | 'admin' | 'member' | 'outcast';
  nick: string | null;
  reason: string | null;
}

/** One archived groupchat message of a room (see migration 0003_muc). */
export interface ArchivedRoomMessage {
  room: string;
  /** XEP-0359 stanza-id, sorting in arrival order. */
  id: string;
  /** ms since epoch. */
  stamp: number;
  nick: string;
  /** The sender's real bare JID. */
  sender: string;
  /** The message as reflected, serialized, without 'to'. */
  stanza: string;
}

/**
 * Storage of a MUC service (XEP-0045): persistent rooms, their affiliations and their
 * archive. Rows of a room's affiliations and archive go with the room (ON DELETE CASCADE).
 * `service` is the MUC host, e.g. `conference.example.org`.
 */
export class MucStore {
  constructor(
    private db: Database,
    readonly service: string,
  ) {}

  /** Every persistent room of the service. */
  async rooms(): Promise<StoredRoom[]> {
    const rows = await this.db.db
      .selectFrom('muc_rooms')
      .select(['name', 'config', 'subject', 'created_at'])
      .where('service', '=', this.service)
      .orderBy('name')
      .execute();
    return rows.map((r) => ({ name: r.name, config: r.config, subject: r.subject, createdAt: Number(r.created_at) }));
  }

  /** Creates or updates a room's configuration and subject. */
  async saveRoom(room: StoredRoom): Promise<void> {
    await this.db.db
      .insertInto('muc_rooms')
      .values({ service: this.service, name: room.name, config: room.config, subject: room.subject, created_at: room.createdAt })
      .onConflict((oc) => oc.columns(['service', 'name']).doUpdateSet({ config: room.config, subject: room.subject }))
      .execute();
  }

  /** Updates the subject of a stored room (no effect when the room is not stored). */
  async saveSubject(name: string, subject: string | null): Promise<void> {
    await this.db.db.updateTable('muc_rooms').set({ subject }).where('service', '=', this.service).where('name', '=', name).execute();
  }

  /** Deletes a room with its affiliations and archive. */
  async deleteRoom(name: string): Promise<void> {
    await this.db.db.deleteFrom('muc_rooms').where('service', '=', this.service).where('name', '=', name).execute();
  }

  /** A room's affiliations. */
  async affiliations(room: string): Promise<StoredAffiliation[]> {
    const rows = await this.db.db
      .selectFrom('muc_affiliations')
      .select(['jid', 'affiliation', 'nick', 'reason'])
      .where('service', '=', this.service)
      .where('room', '=', room)
      .orderBy('jid')
      .execute();
    return rows.map((r) => ({ ...r, affiliation: r.affiliation as StoredAffiliation['affiliation'] }));
  }

  /**
   * Replaces a room's affiliations with `list` in one transaction (the room's whole list
   * is small and is written when it changes).
   */
  async replaceAffiliations(room: string, list: StoredAffiliation[]): Promise<void> {
    await this.db.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('muc_affiliations').where('service', '=', this.service).where('room', '=', room).execute();
      if (list.length > 0) {
        await trx
          .insertInto('muc_affiliations')
          .values(list.map((a) => ({ service: this.service, room, jid: a.jid, affiliation: a.affiliation, nick: a.nick, reason: a.reason })))
          .execute();
      }
    });
  }

  /** Appends archived messages (of any rooms of the service), in one statement. */
  async append(messages: ArchivedRoomMessage[]): Promise<void> {
    if (messages.length === 0) return;
    // SQLite allows 32766 bound parameters per statement; 7 per row.
    for (let i = 0; i < messages.length; i += 1000) {
      await this.db.db
        .insertInto('muc_messages')
        .values(messages.slice(i, i + 1000).map((m) => ({ service: this.service, ...m })))
        .execute();
    }
  }

  /** The latest `limit` archived messages of a room, oldest first. */
  async latest(room: string, limit: number): Promise<ArchivedRoomMessage[]> {
    if (limit <= 0) return [];
    const rows = await this.db.db
      .selectFrom('muc_messages')
      .select(['room', 'id', 'stamp', 'nick', 'sender', 'stanza'])
      .where('service', '=', this.service)
      .where('room', '=', room)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.reverse().map((r) => ({ ...r, stamp: Number(r.stamp) }));
  }
}
