import { NS, StanzaError, parseXml, xml, type XmlElement } from '@parley/xmpp';
import { HANDLED } from '../../core/hooks.ts';
import { defineModule } from '../../core/module.ts';
import { KeyedLock } from '../../core/keyed-lock.ts';
import type { StanzaEvent } from '../../core/router.ts';
import type { Session } from '../../core/session.ts';
import { OfflineStore } from '../../storage/index.ts';
import { PRESENCE_EVENTS } from './presence.ts';

const NS_HINTS = 'urn:xmpp:hints';

/**
 * Whether a message is worth storing for later (XEP-0160 §3, XEP-0334 §4):
 * `normal` and `chat` messages with a body, or explicitly hinted with `<store/>`;
 * never those hinted `<no-store/>` or `<no-permanent-store/>`.
 */
function storable(m: XmlElement): boolean {
  const type = m.attrs.type ?? 'normal';
  if (type !== 'normal' && type !== 'chat') return false;
  if (m.getChild('no-store', NS_HINTS) || m.getChild('no-permanent-store', NS_HINTS)) return false;
  return m.getChild('body') !== undefined || m.getChild('store', NS_HINTS) !== undefined;
}

/**
 * Offline message storage (XEP-0160) with delay stamps (XEP-0203): a message
 * for an account with no available resource is stored (up to
 * `modules.offline.max_messages`; beyond it the sender gets
 * `service-unavailable`, nothing is dropped silently) and delivered, oldest
 * first, when a resource sends available presence with non-negative priority.
 */
export const offlineModule = defineModule({
  name: 'offline',
  xeps: ['XEP-0160', 'XEP-0203'],
  load(ctx) {
    const store = new OfflineStore(ctx.storage);
    const quota = ctx.config.modules.offline.max_messages;
    ctx.onUnload(ctx.disco.host.addFeature('msgoffline'));
    const locks = new KeyedLock();

    // Before the router's own rule (priority −1000), after any module that delivers (≥ 0).
    // Synchronous unless the message has to be stored: bare-JID delivery stays on the fast path.
    const storeFor = async (ev: StanzaEvent): Promise<boolean | undefined> => {
      const user = ev.to.local;
      if (!(await ctx.accounts.exists(user))) return undefined; // The router answers service-unavailable.
      if ((await store.count(ctx.host, user)) >= quota) {
        throw new StanzaError('service-unavailable', `the recipient's offline storage is full (${quota} messages)`);
      }
      const copy = ev.stanza.clone();
      copy.removeChildren('delay', NS.DELAY);
      const stamp = Date.now();
      // XEP-0203 §3: when it was received; XEP-0160 §3: "Offline Storage".
      copy.append(xml('delay', { xmlns: NS.DELAY, from: ctx.host, stamp: new Date(stamp).toISOString() }, 'Offline Storage'));
      await store.add(ctx.host, user, copy.toString(), stamp);
      return HANDLED;
    };
    ctx.on(
      'message/bare',
      (ev: StanzaEvent) => {
        const m = ev.stanza;
        if (!storable(m)) return;
        if (ctx.router.messageTargets(ev.to, m.attrs.type ?? 'normal').length > 0) return;
        return storeFor(ev);
      },
      -500,
    );

    ctx.on(PRESENCE_EVENTS.available, ({ session }: { session: Session }) =>
      locks.run(session.jid.local, async () => {
        const user = session.jid.local;
        const rows = await store.list(ctx.host, user);
        if (rows.length === 0) return;
        const delivered: string[] = [];
        for (const r of rows) {
          let m: XmlElement;
          try {
            m = parseXml(r.stanza);
          } catch (err) {
            ctx.log.error({ err, id: r.id }, 'offline: damaged stored message kept');
            continue;
          }
          m.attrs.to = session.jid.toString();
          session.send(m);
          delivered.push(r.id);
        }
        await store.delete(ctx.host, user, delivered);
      }),
    );
  },
});
