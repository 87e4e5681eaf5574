import { NS, StanzaError, capsVerification, dataFormElement, xml, type XmlElement } from '@parley/xmpp';
import { CONTACT_KINDS, SERVERINFO_FORM_TYPE, type ParleyConfig } from '../config/schema.ts';
import type { DiscoInfo } from '../core/disco.ts';
import { defineModule } from '../core/module.ts';

/**
 * The caps `node` of the server (XEP-0115 §4: a URI that identifies the software). The
 * server's disco#info is also answered at `<CAPS_NODE>#<ver>` (§6.2).
 */
export const CAPS_NODE = 'https://parley.example/caps';

/**
 * The extended information forms (XEP-0128 §2) of `server_info`: the XEP-0157 §3 form
 * (FORM_TYPE `http://jabber.org/network/serverinfo`) with one `<kind>-addresses` field per
 * configured contact kind (§7.1 registry; kinds with no address are left out) plus the fields
 * of an `extra_forms` entry with that FORM_TYPE, and one form per other `extra_forms` entry.
 * No form when there is nothing to say. Each is a `jabber:x:data` form of type `result` with
 * a hidden FORM_TYPE field, as XEP-0128 §2 and XEP-0115 §5.4 rule 3.6 require.
 */
export function serverInfoForms(info: ParleyConfig['server_info']): XmlElement[] {
  const form = (type: string, fields: Array<[string, string[]]>) =>
    dataFormElement({
      type: 'result',
      fields: [{ var: 'FORM_TYPE', type: 'hidden', values: [type] }, ...fields.map(([v, values]) => ({ var: v, values }))],
    });
  const contact: Array<[string, string[]]> = CONTACT_KINDS.filter((k) => info.contact[k].length > 0).map((k) => [
    `${k}-addresses`,
    info.contact[k],
  ]);
  const forms: XmlElement[] = [];
  for (const extra of info.extra_forms) {
    if (extra.form_type === SERVERINFO_FORM_TYPE) contact.push(...Object.entries(extra.fields));
    else forms.push(form(extra.form_type, Object.entries(extra.fields)));
  }
  if (contact.length > 0) forms.unshift(form(SERVERINFO_FORM_TYPE, contact));
  return forms;
}

/**
 * The server's own entity capabilities (XEP-0115): its verification string, computed
 * from its disco#info (§5.1, SHA-1) when first asked for after a change to the
 * identities, features or forms ({@link DiscoInfo.version}).
 */
export class ServerCaps {
  private version = -1;
  private cached = '';
  constructor(private disco: DiscoInfo) {}

  /** The current `ver` (base64 SHA-1, XEP-0115 §5.1). */
  get ver(): string {
    if (this.version !== this.disco.version) {
      this.cached = capsVerification(this.disco.toQuery(), 'sha-1');
      this.version = this.disco.version;
    }
    return this.cached;
  }

  /** The caps node at which disco#info is answered: `<node>#<ver>` (XEP-0115 §6.2). */
  get node(): string {
    return `${CAPS_NODE}#${this.ver}`;
  }

  /** The `<c/>` element (XEP-0115 §4) for stream features (§6.3). */
  element(): XmlElement {
    return xml('c', { xmlns: NS.CAPS, hash: 'sha-1', node: CAPS_NODE, ver: this.ver });
  }
}

/**
 * Service discovery (XEP-0030) for the server: `disco#info` lists the server's
 * identity (`server/im`, XEP-0030 §3.1), the features every module added and the
 * extended information of `server_info` (XEP-0128, XEP-0157 contact addresses);
 * `disco#items` lists the server's items (components, added by later modules).
 * Info requests to an account's bare JID answer with the account identity
 * (`account/registered`, §3.1) for the account itself.
 *
 * Also the server's entity capabilities (XEP-0115): the `<c/>` stream feature after
 * authentication (§6.3) and the disco#info answer at the caps node `<node>#<ver>` (§6.2);
 * any other node is `item-not-found` (XEP-0030 §3.2).
 */
export const discoModule = defineModule({
  name: 'disco',
  xeps: ['XEP-0030', 'XEP-0128', 'XEP-0157', 'XEP-0115'],
  load(ctx) {
    ctx.onUnload(ctx.disco.host.addIdentity({ category: 'server', type: 'im', name: 'Parley' }));
    ctx.onUnload(ctx.disco.host.addFeature(NS.DISCO_INFO));
    ctx.onUnload(ctx.disco.host.addFeature(NS.DISCO_ITEMS));
    ctx.onUnload(ctx.disco.account.addIdentity({ category: 'account', type: 'registered' }));
    ctx.onUnload(ctx.disco.account.addFeature(NS.DISCO_INFO));
    // XEP-0157 §3 / XEP-0128 §2: the server's extended information, from the configuration.
    for (const form of serverInfoForms(ctx.config.server_info)) ctx.onUnload(ctx.disco.host.addForm(form));

    // XEP-0115 §7: an entity that generates caps says so in its disco#info.
    ctx.onUnload(ctx.disco.host.addFeature(NS.CAPS));
    const caps = new ServerCaps(ctx.disco.host);
    // §6.3: the server's caps in the stream features, so that clients need not ask at each
    // login; offered after authentication, computed afresh when a module changed the features.
    ctx.streamFeature({ feature: ({ authenticated }) => (authenticated ? caps.element() : null) });

    ctx.iq('host', NS.DISCO_INFO, {
      get: (ev) => {
        const node = ev.stanza.getChild('query', NS.DISCO_INFO)?.attrs.node;
        if (node === undefined) return ctx.disco.host.toQuery();
        // XEP-0115 §6.2: the caps node answers with the same identities, features and forms.
        if (node === caps.node) return ctx.disco.host.toQuery(node);
        throw new StanzaError('item-not-found', `no node '${node}'`);
      },
    });
    ctx.iq('host', NS.DISCO_ITEMS, {
      get: (ev) => {
        const node = ev.stanza.getChild('query', NS.DISCO_ITEMS)?.attrs.node;
        if (node !== undefined) throw new StanzaError('item-not-found', `no node '${node}'`);
        return ctx.disco.items.toQuery();
      },
    });
    ctx.iq('bare', NS.DISCO_INFO, {
      get: async (ev) => {
        // XEP-0030 §3.1 / RFC 6121: the server answers for accounts; only the account itself or existing accounts.
        if (!(await ctx.accounts.exists(ev.to.local))) throw new StanzaError('service-unavailable');
        return ctx.disco.account.toQuery();
      },
    });
    ctx.iq('bare', NS.DISCO_ITEMS, {
      get: async (ev) => {
        if (!(await ctx.accounts.exists(ev.to.local))) throw new StanzaError('service-unavailable');
        return xml('query', { xmlns: NS.DISCO_ITEMS });
      },
    });
  },
});
