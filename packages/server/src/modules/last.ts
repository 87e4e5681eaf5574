import { JID, StanzaError, xml, type XmlElement } from '@parley/xmpp';
import { defineModule, type ModuleContext } from '../core/module.ts';
import type { StanzaEvent } from '../core/router.ts';
import type { Session } from '../core/session.ts';
import { RosterStore } from '../storage/index.ts';
import { PRESENCE_EVENTS } from './im/presence.ts';

/** The Last Activity namespace (XEP-0012 §2; also the disco feature, §6). */
export const NS_LAST = 'jabber:iq:last';

/** `kv_store` store; the one key `''` holds `{ at, status }` of the account's last logout. */
const STORE = 'last';
const KEY = '';
/** Session data key: the status text of the resource's unavailable presence (XEP-0012 §3). */
const STATUS = 'last:status';

/** What is kept of an account's last logout: when (ms since epoch) and the status text of its unavailable presence. */
interface LastLogout {
  at: number;
  status: string;
}

/**
 * Whether `requester` may see `user`'s presence, and so its last activity
 * (XEP-0012 §3, §8): the account itself, or a contact whose roster item in
 * the user's roster has subscription `from` or `both` (RFC 6121 §2.1.2.5).
 */
async function authorized(ctx: ModuleContext, roster: RosterStore, user: string, requester: JID): Promise<boolean> {
  const bare = requester.bare();
  if (bare.local === user && bare.domain === ctx.host) return true;
  const item = await roster.get(ctx.host, user, bare.toString());
  return item !== null && (item.subscription === 'from' || item.subscription === 'both');
}

/**
 * Last Activity (XEP-0012 v2.0):
 *
 * - To the server (§5): `seconds` is the time since the server started; no text.
 * - To a local account's bare JID (§3), answered by the server: `forbidden`
 *   unless the requester may see the account's presence (the account itself,
 *   or subscription `from`/`both`; §3, §8). Then: `seconds='0'` and no text when the
 *   account has a connected resource (§3, last paragraph); otherwise the seconds
 *   since its last available resource went unavailable, with the status text of
 *   that unavailable presence (§3). No logout on record → `item-not-found`. No
 *   such account → `service-unavailable` (RFC 6121 §8.5.1).
 * - To a full JID (§4): the router delivers the request to the resource, which
 *   answers for itself; but a requester not allowed to see the presence gets
 *   `forbidden` from the server and the request is not delivered (§4).
 * - The logout is recorded in `kv_store` (store `last`, key `''`) when the
 *   account's last available resource becomes unavailable (or disconnects).
 * - `jabber:iq:last` is in the server's and the accounts' disco#info (§6).
 */
export const lastModule = defineModule({
  name: 'last',
  xeps: ['XEP-0012'],
  load(ctx) {
    const started = Date.now();
    const roster = new RosterStore(ctx.storage);
    ctx.onUnload(ctx.disco.host.addFeature(NS_LAST));
    ctx.onUnload(ctx.disco.account.addFeature(NS_LAST));

    const query = (seconds: number, text?: string): XmlElement =>
      xml('query', { xmlns: NS_LAST, seconds: String(Math.max(0, Math.floor(seconds))) }, text || null);

    // §5: the server's uptime.
    ctx.iq('host', NS_LAST, { get: () => query((Date.now() - started) / 1000) });

    // §3: an account's last logout, answered by the server.
    ctx.iq('bare', NS_LAST, {
      get: async (ev) => {
        const user = ev.to.local;
        if (ev.to.domain !== ctx.host || !(await ctx.accounts.exists(user))) throw new StanzaError('service-unavailable');
        if (!(await authorized(ctx, roster, user, ev.from))) {
          throw new StanzaError('forbidden', 'you are not allowed to see this account\'s presence (XEP-0012 §3)');
        }
        // §3: "If the user has at least one connected or available resource … '0'" with an empty query.
        if (ctx.sessions.isOnline(ev.to)) return query(0);
        const raw = await ctx.kv.get(ctx.host, user, STORE, KEY);
        let last: LastLogout | null = null;
        try {
          last = raw === null ? null : (JSON.parse(raw) as LastLogout);
        } catch {
          ctx.log.warn({ user }, 'last: damaged record ignored');
        }
        if (!last || typeof last.at !== 'number') throw new StanzaError('item-not-found', 'no logout on record');
        return query((Date.now() - last.at) / 1000, typeof last.status === 'string' ? last.status : undefined);
      },
    });

    // §4: a request to a full JID from someone not allowed to see the presence is not delivered.
    ctx.on(
      'iq/full',
      (ev: StanzaEvent) => {
        if (ev.stanza.firstElement()?.ns !== NS_LAST || ev.to.domain !== ctx.host || ev.to.local === '') return;
        return authorized(ctx, roster, ev.to.local, ev.from).then((ok) => {
          if (!ok) throw new StanzaError('forbidden', 'you are not allowed to see this account\'s presence (XEP-0012 §4)');
        });
      },
      50,
    );

    // The status text of an unavailable presence from a client (kept for §3's answer).
    ctx.on(
      'stanza/in',
      (ev: { stanza: XmlElement; session: Session }) => {
        const s = ev.stanza;
        if (s.name !== 'presence' || s.attrs.to !== undefined) return;
        if (s.attrs.type === 'unavailable') ev.session.data.set(STATUS, statusText(s));
        else if (s.attrs.type === undefined) ev.session.data.delete(STATUS); // Available again: an older status no longer applies.
      },
      50,
    );

    // Record the logout when the account's last available resource goes.
    ctx.on(PRESENCE_EVENTS.unavailable, async ({ session }: { session: Session }) => {
      const others = ctx.sessions.resources(session.jid.bare()).some((s) => s !== session && s.presence !== null);
      if (others) return;
      const status = (session.data.get(STATUS) as string | undefined) ?? '';
      session.data.delete(STATUS);
      const record: LastLogout = { at: Date.now(), status };
      try {
        await ctx.kv.set(ctx.host, session.jid.local, STORE, KEY, JSON.stringify(record));
      } catch (err) {
        // The account may have been removed meanwhile (the row goes with it).
        ctx.log.debug({ err, user: session.jid.local }, 'last: logout not recorded');
      }
    });
  },
});

/** The `<status/>` text of a presence: the one without `xml:lang` if any, else the first (RFC 6121 §4.7.2.2). */
function statusText(p: XmlElement): string {
  const all = p.getChildren('status');
  const plain = all.find((s) => s.attrs['xml:lang'] === undefined) ?? all[0];
  return plain?.text() ?? '';
}
