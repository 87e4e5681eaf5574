import { StanzaError, xml } from '@parley/xmpp';
import { defineModule } from '../core/module.ts';
import { parseStored, serializeStored } from './stored-xml.ts';

/** The vcard-temp namespace (XEP-0054 §1; also the disco feature, §4). */
export const NS_VCARD = 'vcard-temp';

/** `kv_store` store name; the one key is `''` (one vCard per account). */
const STORE = 'vcard';
const KEY = '';

/**
 * vcard-temp (XEP-0054 v1.3.0): each account stores one vCard on the server.
 *
 * - Get with no `to` or to one's own bare JID (§3.1): the stored vCard, or an
 *   empty `<vCard xmlns='vcard-temp'/>` result when none is stored (one of the
 *   two answers §3.1 allows).
 * - Get to another local account's bare JID (§3.3): the server answers on the
 *   account's behalf, never forwarding to a resource. When that account has no
 *   vCard or does not exist, the answer is `service-unavailable` in both cases
 *   (§3.3 since v1.3.0, against directory harvesting, as RFC 6121 §8.5.1 wants
 *   for nonexistent accounts).
 * - Set with no `to` or to one's own bare JID (§3.2) replaces the whole vCard
 *   (there are no partial updates); an empty `<vCard/>` removes it. A set to
 *   any other JID → `forbidden` (§3.2: "SHOULD be forbidden or not-allowed").
 *   A vCard whose serialized XML is longer than `modules.vcard.max_size` bytes
 *   → `not-acceptable` with a text giving the limit (RFC 6120 §8.3.3.12: the
 *   request "does not meet criteria defined by the recipient or server"; the
 *   condition XEP-0060 §7.1.3.5 uses for a payload over a service's size limit),
 *   and the stored vCard is left as it was.
 * - The server advertises the `vcard-temp` feature in its disco#info (§4).
 *
 * The vCard is kept as serialized XML in `kv_store` (store `vcard`, key `''`),
 * so it goes with the account when the account is removed.
 */
export const vcardModule = defineModule({
  name: 'vcard',
  xeps: ['XEP-0054'],
  load(ctx) {
    ctx.onUnload(ctx.disco.host.addFeature(NS_VCARD));
    const maxSize = ctx.config.modules.vcard.max_size;

    ctx.iq('bare', NS_VCARD, {
      get: async (ev) => {
        const payload = ev.stanza.firstElement()!;
        if (payload.name !== 'vCard') throw new StanzaError('bad-request', `expected <vCard xmlns='${NS_VCARD}'/>`);
        const own = ev.from.bare().equals(ev.to);
        const stored = await ctx.kv.get(ctx.host, ev.to.local, STORE, KEY);
        if (stored !== null) return parseStored(stored);
        // §3.1: no vCard of one's own → an empty vCard; §3.3: someone else's → service-unavailable,
        // the same answer as for an account that does not exist.
        if (own) return xml('vCard', { xmlns: NS_VCARD });
        throw new StanzaError('service-unavailable');
      },
      set: async (ev) => {
        // §3.2: only one's own vCard (no 'to', or one's own bare JID); the same answer whether or not the target exists.
        if (!ev.from.bare().equals(ev.to)) throw new StanzaError('forbidden', 'you may only set your own vCard (XEP-0054 §3.2)');
        const vcard = ev.stanza.firstElement()!;
        if (vcard.name !== 'vCard') throw new StanzaError('bad-request', `expected <vCard xmlns='${NS_VCARD}'/>`);
        if (vcard.getChildren().length === 0 && vcard.text().trim() === '') {
          await ctx.kv.delete(ctx.host, ev.to.local, STORE, KEY);
          return null;
        }
        const text = serializeStored(vcard);
        const size = Buffer.byteLength(text, 'utf8');
        if (size > maxSize) {
          throw new StanzaError('not-acceptable', `the vCard is ${size} bytes; this server stores at most ${maxSize} bytes`);
        }
        await ctx.kv.set(ctx.host, ev.to.local, STORE, KEY, text);
        return null;
      },
    });
  },
});
