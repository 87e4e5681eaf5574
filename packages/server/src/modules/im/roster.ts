import { JID, StanzaError, xml } from '@parley/xmpp';
import type { ModuleContext } from '../../core/module.ts';
import type { StanzaEvent } from '../../core/router.ts';
import { NS_ROSTER, itemElement, type RosterService } from './roster-service.ts';
import type { PresenceService } from './presence.ts';

const NS_ROSTERVER = 'urn:xmpp:features:rosterver';

/**
 * Roster management (RFC 6121 §2) with versioning (XEP-0237): get, set (name,
 * groups), remove, pushes to interested resources, and the maximum roster size.
 */
export function installRoster(ctx: ModuleContext, roster: RosterService, presence: PresenceService, maxItems: number): void {
  // XEP-0237 §2.1: the stream feature.
  ctx.streamFeature({ feature: (i) => (i.authenticated ? xml('ver', { xmlns: NS_ROSTERVER }) : null) });

  const own = (ev: StanzaEvent): string => {
    // RFC 6121 §2.1.5: only the account itself manages its roster.
    if (!ev.origin || !ev.from.bare().equals(ev.to)) throw new StanzaError('forbidden', 'a roster belongs to its account');
    return ev.to.local;
  };

  ctx.iq('bare', NS_ROSTER, {
    async get(ev) {
      const user = own(ev);
      roster.interested.add(ev.origin!);
      const host = ctx.host;
      const current = await roster.version(user);
      const asked = ev.stanza.getChild('query', NS_ROSTER)?.attrs.ver;
      if (asked !== undefined && /^\d+$/.test(asked)) {
        const since = Number(asked);
        if (since === current) return null; // XEP-0237 §2.3: nothing changed.
        if (since < current && since > 0) {
          // XEP-0237 §2.4: empty result, then one push per change.
          const changes = await roster.store.changesSince(host, user, since);
          const session = ev.origin!;
          setImmediate(() => {
            for (const c of changes) roster.push(user, itemElement(c.item, c.removed), c.version, session);
          });
          return null;
        }
      }
      const items = await roster.items(user);
      return xml('query', { xmlns: NS_ROSTER, ver: String(current) }, items.map((i) => itemElement(i)));
    },
    async set(ev) {
      const user = own(ev);
      const query = ev.stanza.getChild('query', NS_ROSTER);
      const items = query?.getChildren('item') ?? [];
      // RFC 6121 §2.3.3: exactly one item.
      if (items.length !== 1) throw new StanzaError('bad-request', 'a roster set has exactly one <item/>');
      const item = items[0]!;
      const contact = JID.tryParse(item.attrs.jid ?? '');
      if (!contact) throw new StanzaError('bad-request', "the item's 'jid' is not a valid JID");
      const jid = contact.bare().toString();
      if (item.attrs.subscription === 'remove') {
        const removed = await roster.get(user, jid);
        if (!removed) throw new StanzaError('item-not-found', `${jid} is not in the roster`);
        // RFC 6121 §2.5.2: cancel both directions of the subscription.
        await presence.cancelOnRemove(user, removed);
        await roster.remove(user, jid);
        return null;
      }
      const groups = item.getChildren('group').map((g) => g.text());
      if (groups.some((g) => g === '')) throw new StanzaError('not-acceptable', 'a group name is empty (RFC 6121 §2.3.3)');
      if (new Set(groups).size !== groups.length) throw new StanzaError('bad-request', 'a group is listed twice (RFC 6121 §2.3.3)');
      const name = item.attrs.name;
      const existing = await roster.get(user, jid);
      if (!existing && (await roster.items(user)).length >= maxItems) {
        throw new StanzaError('not-allowed', `the roster is full (${maxItems} items, RFC 6121 §2.3.3)`);
      }
      // The client sets only name and groups; 'subscription' and 'ask' are the server's (§2.1.2.5).
      await roster.update(user, jid, (i) => {
        i.name = name === undefined || name === '' ? null : name;
        i.groups = groups;
      });
      return null;
    },
  });
}
