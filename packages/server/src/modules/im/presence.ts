import { JID, parseXml, xml, type XmlElement } from '@parley/xmpp';
import { HANDLED } from '../../core/hooks.ts';
import type { ModuleContext } from '../../core/module.ts';
import type { StanzaEvent } from '../../core/router.ts';
import type { Session } from '../../core/session.ts';
import type { RosterItem } from '../../storage/index.ts';
import type { RosterService } from './roster-service.ts';
import { KeyedLock } from '../../core/keyed-lock.ts';

/** kv_store store of inbound subscription requests awaiting the user's answer (RFC 6121 §3.1.3). */
const PENDING_IN = 'subscribe-in';
/** Session data key: JIDs this resource sent directed presence to (RFC 6121 §4.6). */
const DIRECTED = 'presence:directed';

const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

const hasFrom = (i: RosterItem | null) => i !== null && (i.subscription === 'from' || i.subscription === 'both');
const hasTo = (i: RosterItem | null) => i !== null && (i.subscription === 'to' || i.subscription === 'both');

/** Events other modules can listen to. */
export const PRESENCE_EVENTS = {
  /** A resource sent its initial presence with non-negative priority: `{ session }` (offline delivery, XEP-0160). */
  available: 'presence/available',
  /** A resource became unavailable (or disconnected): `{ session }` (last activity, XEP-0012). */
  unavailable: 'presence/unavailable',
} as const;

/**
 * Presence and subscriptions (RFC 6121 §3, §4) for local accounts: the
 * subscription state machine with roster pushes on both sides, pre-approval,
 * initial presence with probes, broadcast, directed presence, unavailable on
 * logout or connection loss. A stanza's extension children travel unchanged.
 */
export class PresenceService {
  /** Subscription changes of one account are applied one at a time (they read, then write its roster). */
  private locks = new KeyedLock();

  constructor(
    private ctx: ModuleContext,
    private roster: RosterService,
  ) {}

  private route(stanza: XmlElement): void {
    this.ctx.router.route(stanza, null);
  }

  private isLocal(jid: JID): boolean {
    return jid.local !== '' && this.ctx.router.isLocal(jid.domain);
  }

  /** The presence of `session` addressed to `to` (a copy of its last broadcast, or unavailable). */
  private presenceOf(session: Session, to: string): XmlElement {
    const p = session.presence ? session.presence.clone() : xml('presence', { type: 'unavailable' });
    p.attrs.from = session.jid.toString();
    p.attrs.to = to;
    delete p.attrs.id;
    return p;
  }

  // --- Outbound: from a local client (RFC 6121 §3.1.2, §3.2.2, §3.3.2, §3.4, §4.2–4.6) ---

  /** Handles presence from a client session; returns `true` when it must not be routed further. */
  async outbound(stanza: XmlElement, session: Session): Promise<boolean> {
    const type = stanza.attrs.type;
    const to = stanza.attrs.to;
    if (to === undefined) {
      if (type === undefined) await this.broadcastAvailable(stanza, session);
      else if (type === 'unavailable') this.broadcastUnavailable(stanza, session);
      // Other types without 'to' are meaningless (RFC 6121 §4.2); drop them.
      return true;
    }
    const contact = JID.tryParse(to);
    if (!contact) return false; // The router answers jid-malformed.
    if (type === undefined || type === 'unavailable') {
      // Directed presence (§4.6): remember it, for the unavailable at logout.
      let set = session.data.get(DIRECTED) as Set<string> | undefined;
      if (type === undefined) {
        if (!set) session.data.set(DIRECTED, (set = new Set()));
        set.add(contact.toString());
      } else set?.delete(contact.toString());
      return false;
    }
    if (!SUBSCRIPTION_TYPES.has(type)) return false;
    return this.locks.run(session.jid.local, () => this.outboundSubscription(stanza, session, type, contact));
  }

  private async outboundSubscription(stanza: XmlElement, session: Session, type: string, contact: JID): Promise<boolean> {
    const user = session.jid.local;
    const bare = contact.bare().toString();
    // Subscription stanzas are addressed to the bare JID and stamped with the user's bare JID (§3.1.2).
    stanza.attrs.to = bare;
    stanza.attrs.from = session.jid.bare().toString();
    switch (type) {
      case 'subscribe': {
        const item = await this.roster.get(user, bare);
        if (!hasTo(item)) await this.roster.update(user, bare, (i) => void (i.ask = true));
        return false;
      }
      case 'subscribed': {
        const pending = await this.ctx.kv.get(this.ctx.host, user, PENDING_IN, bare);
        const item = await this.roster.get(user, bare);
        if (hasFrom(item)) return true; // Already subscribed: nothing to do (§3.1.5).
        if (pending === null) {
          // §3.4: pre-approval of a request not yet received.
          await this.roster.update(user, bare, (i) => void (i.approved = true));
          return true;
        }
        await this.ctx.kv.delete(this.ctx.host, user, PENDING_IN, bare);
        await this.roster.update(user, bare, (i) => {
          i.subscription = i.subscription === 'to' ? 'both' : 'from';
          i.approved = false;
        });
        // §3.1.5: then the contact gets the user's current presence from each available resource.
        queueMicrotask(() => {
          for (const s of this.ctx.sessions.resources(session.jid.bare())) if (s.presence) this.route(this.presenceOf(s, bare));
        });
        return false;
      }
      case 'unsubscribe': {
        await this.roster.update(
          user,
          bare,
          (i) => {
            i.subscription = i.subscription === 'both' ? 'from' : i.subscription === 'to' ? 'none' : i.subscription;
            i.ask = false;
          },
          false,
        );
        return false;
      }
      case 'unsubscribed': {
        const hadPending = await this.ctx.kv.delete(this.ctx.host, user, PENDING_IN, bare);
        const item = await this.roster.update(
          user,
          bare,
          (i) => {
            i.subscription = i.subscription === 'both' ? 'to' : i.subscription === 'from' ? 'none' : i.subscription;
            i.approved = false;
          },
          false,
        );
        if (hasFrom(item) || hadPending || item) {
          // §3.2.2: the contact gets unavailable presence from each of the user's resources.
          queueMicrotask(() => {
            for (const s of this.ctx.sessions.resources(session.jid.bare())) {
              if (s.presence) this.route(xml('presence', { type: 'unavailable', from: s.jid.toString(), to: bare }));
            }
          });
        }
        return false;
      }
    }
    return false;
  }

  /** Initial presence or an update (RFC 6121 §4.2, §4.4). */
  private async broadcastAvailable(stanza: XmlElement, session: Session): Promise<void> {
    const initial = session.presence === null;
    const p = Number.parseInt(stanza.getChildText('priority') ?? '0', 10);
    session.priority = Number.isFinite(p) ? Math.max(-128, Math.min(127, p)) : 0;
    session.presence = stanza;
    const user = session.jid.local;
    const items = await this.roster.items(user);
    const from = session.jid.toString();
    // To contacts with a subscription 'from' or 'both' (§4.2.2) …
    for (const i of items) {
      if (hasFrom(i)) this.route(this.presenceOf(session, i.jid));
    }
    // … and to the user's other available resources (§4.2.2 rule 3), and to itself.
    for (const s of this.ctx.sessions.resources(session.jid.bare())) {
      if (s.presence) s.send(this.presenceOf(session, s.jid.toString()));
    }
    if (!initial) return;
    // §4.3: probe the contacts the user is subscribed to, from the new resource.
    for (const i of items) {
      if (hasTo(i)) this.route(xml('presence', { type: 'probe', from, to: i.jid }));
    }
    // §3.1.3: subscription requests received while offline are delivered again.
    for (const [, raw] of await this.ctx.kv.all(this.ctx.host, user, PENDING_IN)) {
      try {
        const req = parseXml(raw);
        req.attrs.to = session.jid.bare().toString();
        session.send(req);
      } catch {
        /* a damaged row: skip it */
      }
    }
    if (session.priority >= 0) await this.ctx.router.hooks.emit(PRESENCE_EVENTS.available, { session });
  }

  /** Unavailable presence to everyone who saw the user (RFC 6121 §4.5.2, §4.6.3). */
  broadcastUnavailable(stanza: XmlElement | null, session: Session, items?: RosterItem[]): void {
    const from = session.jid.toString();
    const make = (to: string) => {
      const p = stanza ? stanza.clone() : xml('presence', { type: 'unavailable' });
      p.attrs.type = 'unavailable';
      p.attrs.from = from;
      p.attrs.to = to;
      delete p.attrs.id;
      return p;
    };
    const directed = (session.data.get(DIRECTED) as Set<string> | undefined) ?? new Set<string>();
    session.data.delete(DIRECTED);
    if (session.presence === null) {
      // §4.6.3: directed presence is undone even when the resource never broadcast presence
      // (a bot that only joined chat rooms, XEP-0045 §7.2).
      for (const j of directed) this.route(make(j));
      return;
    }
    session.presence = null;
    const sendAll = (list: RosterItem[]) => {
      const done = new Set<string>();
      for (const i of list) {
        if (hasFrom(i)) {
          this.route(make(i.jid));
          done.add(i.jid);
        }
      }
      for (const j of directed) if (!done.has(j)) this.route(make(j));
      for (const s of this.ctx.sessions.resources(session.jid.bare())) if (s !== session && s.presence) s.send(make(s.jid.toString()));
      void this.ctx.router.hooks.emit(PRESENCE_EVENTS.unavailable, { session });
    };
    if (items) sendAll(items);
    else this.roster.items(session.jid.local).then(sendAll, (err) => this.ctx.log.error({ err }, 'presence: roster read failed'));
  }

  /** RFC 6121 §2.5.2: removing an item cancels the subscriptions both ways. */
  async cancelOnRemove(user: string, item: RosterItem): Promise<void> {
    const from = JID.of(user, this.ctx.host).toString();
    if (hasTo(item) || item.ask) this.route(xml('presence', { type: 'unsubscribe', from, to: item.jid }));
    if (hasFrom(item)) this.route(xml('presence', { type: 'unsubscribed', from, to: item.jid }));
    await this.ctx.kv.delete(this.ctx.host, user, PENDING_IN, item.jid);
  }

  // --- Inbound: to a local account's bare JID (RFC 6121 §3.1.3, §3.2.3, §3.3.3, §4.3.2) ---

  async inbound(ev: StanzaEvent): Promise<boolean> {
    const { stanza } = ev;
    const type = stanza.attrs.type;
    if (type === 'probe') return this.probe(ev);
    if (type === undefined || !SUBSCRIPTION_TYPES.has(type)) return false;
    return this.locks.run(ev.to.local, () => this.inboundSubscription(ev, type));
  }

  private async inboundSubscription(ev: StanzaEvent, type: string): Promise<boolean> {
    const { stanza } = ev;
    const user = ev.to.local;
    if (!(await this.ctx.accounts.exists(user))) return true; // §3.1.3: no such user — silently ignore.
    const contact = ev.from.bare().toString();
    const deliver = () => {
      const s = stanza.clone();
      s.attrs.from = contact;
      s.attrs.to = ev.to.bare().toString();
      for (const r of this.ctx.sessions.resources(ev.to.bare())) if (r.presence) r.send(s);
    };
    const item = await this.roster.get(user, contact);
    switch (type) {
      case 'subscribe': {
        if (hasFrom(item)) {
          // §3.1.3: already subscribed — answer for the user.
          this.route(xml('presence', { type: 'subscribed', from: ev.to.bare().toString(), to: contact }));
          return true;
        }
        if (item?.approved) {
          // §3.4: pre-approved.
          await this.roster.update(user, contact, (i) => {
            i.subscription = i.subscription === 'to' ? 'both' : 'from';
            i.approved = false;
          });
          this.route(xml('presence', { type: 'subscribed', from: ev.to.bare().toString(), to: contact }));
          for (const s of this.ctx.sessions.resources(ev.to.bare())) if (s.presence) this.route(this.presenceOf(s, contact));
          return true;
        }
        const keep = stanza.clone();
        keep.attrs.from = contact;
        delete keep.attrs.to;
        await this.ctx.kv.set(this.ctx.host, user, PENDING_IN, contact, keep.toString());
        deliver();
        return true;
      }
      case 'subscribed': {
        if (!item?.ask) return true; // §3.1.6: a 'subscribed' nobody asked for is ignored.
        await this.roster.update(user, contact, (i) => {
          i.subscription = i.subscription === 'from' ? 'both' : i.subscription === 'none' ? 'to' : i.subscription;
          i.ask = false;
        });
        deliver();
        return true;
      }
      case 'unsubscribe': {
        await this.ctx.kv.delete(this.ctx.host, user, PENDING_IN, contact);
        if (!hasFrom(item) && !item?.approved) {
          deliver();
          return true;
        }
        await this.roster.update(user, contact, (i) => {
          i.subscription = i.subscription === 'both' ? 'to' : i.subscription === 'from' ? 'none' : i.subscription;
          i.approved = false;
        });
        deliver();
        // §3.3.3: the contact no longer sees the user: unavailable from each resource.
        for (const s of this.ctx.sessions.resources(ev.to.bare())) {
          if (s.presence) this.route(xml('presence', { type: 'unavailable', from: s.jid.toString(), to: contact }));
        }
        return true;
      }
      case 'unsubscribed': {
        if (!item || (!hasTo(item) && !item.ask)) return true; // §3.2.3: nothing to cancel — ignore.
        await this.roster.update(user, contact, (i) => {
          i.subscription = i.subscription === 'both' ? 'from' : i.subscription === 'to' ? 'none' : i.subscription;
          i.ask = false;
        });
        deliver();
        // The user no longer sees the contact's resources.
        const gone = xml('presence', { type: 'unavailable', from: contact });
        for (const r of this.ctx.sessions.resources(ev.to.bare())) {
          if (r.presence) {
            const g = gone.clone();
            g.attrs.to = r.jid.toString();
            r.send(g);
          }
        }
        return true;
      }
    }
    return false;
  }

  /** RFC 6121 §4.3.2: a probe is answered with the presence of each available resource, if subscribed. */
  private async probe(ev: StanzaEvent): Promise<boolean> {
    const user = ev.to.local;
    const prober = ev.from.bare().toString();
    const own = ev.from.bare().equals(ev.to.bare());
    if (!own) {
      const item = await this.roster.get(user, prober);
      if (!hasFrom(item)) return true; // Not authorized to see presence: no answer.
    }
    const reply = ev.from.toString();
    const resources = this.ctx.sessions.resources(ev.to.bare()).filter((s) => s.presence);
    if (resources.length === 0) {
      this.route(xml('presence', { type: 'unavailable', from: ev.to.bare().toString(), to: reply }));
      return true;
    }
    for (const s of resources) this.route(this.presenceOf(s, reply));
    return true;
  }
}

/** Wires the presence service to the hooks. */
export function installPresence(ctx: ModuleContext, presence: PresenceService, roster: RosterService): void {
  // Outbound: presence from a client session, before routing.
  ctx.on('stanza/in', (ev: { stanza: XmlElement; session: Session }) => {
    if (ev.stanza.name !== 'presence') return;
    return presence.outbound(ev.stanza, ev.session).then((stop) => {
      if (stop) return HANDLED;
      ctx.router.route(ev.stanza, ev.session);
      return HANDLED;
    });
  });
  // Inbound subscription handling and probes.
  ctx.on('presence/bare', (ev: StanzaEvent) => {
    const t = ev.stanza.attrs.type;
    // Availability goes straight to the router's delivery rule (synchronously).
    if (t === undefined || t === 'unavailable' || t === 'error') return;
    return presence.inbound(ev);
  });
  // §8.5.3.2.3 / §3: subscription stanzas to a full JID are handled as if to the bare JID.
  ctx.on('presence/full', (ev: StanzaEvent) => {
    const t = ev.stanza.attrs.type;
    if (t !== undefined && (SUBSCRIPTION_TYPES.has(t) || t === 'probe')) {
      return presence.inbound({ ...ev, to: ev.to.bare(), kind: 'bare' }).then((handled) => handled || undefined);
    }
  });
  // XEP-0077 §3.2: an account being removed cancels its subscriptions both ways, so contacts' rosters follow.
  ctx.on('user/deleting', async (ev: { username: string }) => {
    for (const item of await roster.items(ev.username)) await presence.cancelOnRemove(ev.username, item);
    roster.release(ev.username, true);
  });
  // Connection loss or logout without unavailable presence (§4.5.2).
  ctx.on('session/ended', (ev: { session: Session }) => {
    presence.broadcastUnavailable(null, ev.session);
  });
  // After every other handler has read it: the roster kept for the account's sessions goes with the last one.
  ctx.on('session/ended', (ev: { session: Session }) => roster.release(ev.session.jid.local), -1000);
}
