import { NS, StanzaError, xml, type XmlElement } from '@parley/xmpp';
import { defineModule } from '../core/module.ts';
import type { StanzaEvent } from '../core/router.ts';
import { parseStored, serializeStored } from './stored-xml.ts';

/** The jabber:iq:private namespace (XEP-0049 §2). */
export const NS_PRIVATE = 'jabber:iq:private';

/** `kv_store` store name; keys are {@link privateKey}. */
const STORE = 'private';

/**
 * Namespaces that may not be stored, answered with `not-acceptable`
 * (XEP-0049 §2.3, §3: "Not Acceptable — the IQ get or set is qualified by a
 * reserved namespace"; the refusal is OPTIONAL there). Refused: the stream
 * content namespaces and the stream namespace (RFC 6120 §4.8), this protocol's
 * own namespace (also what a child written without `xmlns` inherits from
 * `<query/>`), and `vcard-temp`, the spec's own example, which has its own
 * protocol (XEP-0054). The wider `jabber:*` and `http://jabber.org/*` prefixes
 * §2.3 calls reserved are accepted, so as not to break clients that store data
 * under such names.
 */
const RESERVED = new Set<string>([
  '',
  NS_PRIVATE,
  NS.CLIENT,
  NS.SERVER,
  NS.COMPONENT_ACCEPT,
  'jabber:component:connect',
  NS.STREAM,
  'vcard-temp',
]);

/** The `kv_store` key of a stored element: Clark notation `{namespace}name` (a name cannot contain `}`). */
export function privateKey(el: XmlElement): string {
  return `{${el.ns}}${el.name}`;
}

/**
 * Private XML Storage (XEP-0049 v1.2): an account stores arbitrary XML
 * fragments on the server, one per (element name, namespace), and reads them
 * back; nobody else may read or write them (§4).
 *
 * - Get or set with no `to` or to one's own bare JID; to any other JID →
 *   `forbidden` (§2.3: "Forbidden" or "Service Unavailable", "the former is
 *   preferable"; §3), whether or not that account exists.
 * - `<query/>` without a child element → `not-acceptable` (§2.3: "At least
 *   one child element with a proper namespace MUST be included; otherwise the
 *   server MUST respond with a Not Acceptable error"; the "Bad Format" §2.3
 *   suggests for an empty get is no RFC 6120 stanza condition, and XEP-0086
 *   maps its code 406 to not-acceptable).
 * - A child in a reserved namespace (see {@link RESERVED}) → `not-acceptable`;
 *   nothing of that request is stored.
 * - Set: every child is stored, each under its own (name, namespace), replacing
 *   what was there (§2.3: a set "MAY contain multiple elements"); an empty
 *   child (no attributes, no content) deletes the stored element.
 * - Get: the stored element for each child of the query, or the requested
 *   element empty when nothing is stored (XEP-0049 §2.3's example answers a get
 *   with the element; existing servers answer an unknown one with it empty).
 *   A client "MUST NOT query for more than one namespace" in one get; if it
 *   does, each is answered.
 *
 * Data lives in `kv_store` (store `private`, key `{namespace}name`, value the
 * serialized element), so it goes with the account when the account is removed.
 */
export const privateModule = defineModule({
  name: 'private',
  xeps: ['XEP-0049'],
  load(ctx) {
    /** Checks the request and returns the children of its `<query/>`. */
    function children(ev: StanzaEvent): XmlElement[] {
      if (!ev.from.bare().equals(ev.to)) {
        throw new StanzaError('forbidden', 'private XML storage is only for the account itself (XEP-0049 §4)');
      }
      const query = ev.stanza.firstElement()!;
      if (query.name !== 'query') throw new StanzaError('bad-request', `expected <query xmlns='${NS_PRIVATE}'/>`);
      const els = query.getChildren();
      if (els.length === 0) throw new StanzaError('not-acceptable', 'the query has no child element to store or retrieve (XEP-0049 §2.3)');
      for (const el of els) {
        if (RESERVED.has(el.ns)) {
          throw new StanzaError(
            'not-acceptable',
            el.ns === '' || el.ns === NS_PRIVATE
              ? `<${el.name}/> needs a namespace of its own (XEP-0049 §2.3)`
              : `the namespace '${el.ns}' is reserved (XEP-0049 §2.3)`,
          );
        }
      }
      return els;
    }

    ctx.iq('bare', NS_PRIVATE, {
      get: async (ev) => {
        const out = xml('query', { xmlns: NS_PRIVATE });
        for (const el of children(ev)) {
          const stored = await ctx.kv.get(ctx.host, ev.to.local, STORE, privateKey(el));
          out.append(stored !== null ? parseStored(stored) : xml(el.name, { xmlns: el.ns }));
        }
        return out;
      },
      set: async (ev) => {
        const els = children(ev);
        // Validated as a whole above; now store each (the last of duplicates wins).
        for (const el of els) {
          const key = privateKey(el);
          if (el.children.length === 0 && Object.keys(el.attrs).length === 0) {
            await ctx.kv.delete(ctx.host, ev.to.local, STORE, key);
          } else {
            await ctx.kv.set(ctx.host, ev.to.local, STORE, key, serializeStored(el));
          }
        }
        return null;
      },
    });
  },
});
