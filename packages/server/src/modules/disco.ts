import { NS, StanzaError, xml } from '@parley/xmpp';
import { defineModule } from '../core/module.ts';

/**
 * Service discovery (XEP-0030) for the server: `disco#info` lists the server's
 * identity (`server/im`, XEP-0030 §3.1) and the features every module added;
 * `disco#items` lists the server's items (components, added by later modules).
 * Info requests to an account's bare JID answer with the account identity
 * (`account/registered`, §3.1) for the account itself.
 */
export const discoModule = defineModule({
  name: 'disco',
  xeps: ['XEP-0030'],
  load(ctx) {
    ctx.onUnload(ctx.disco.host.addIdentity({ category: 'server', type: 'im', name: 'Parley' }));
    ctx.onUnload(ctx.disco.host.addFeature(NS.DISCO_INFO));
    ctx.onUnload(ctx.disco.host.addFeature(NS.DISCO_ITEMS));
    ctx.onUnload(ctx.disco.account.addIdentity({ category: 'account', type: 'registered' }));
    ctx.onUnload(ctx.disco.account.addFeature(NS.DISCO_INFO));

    const items = new Map<string, { jid: string; name?: string }>();
    ctx.iq('host', NS.DISCO_INFO, {
      get: (ev) => {
        const node = ev.stanza.getChild('query', NS.DISCO_INFO)?.attrs.node;
        if (node !== undefined) throw new StanzaError('item-not-found', `no node '${node}'`);
        return ctx.disco.host.toQuery();
      },
    });
    ctx.iq('host', NS.DISCO_ITEMS, {
      get: (ev) => {
        const node = ev.stanza.getChild('query', NS.DISCO_ITEMS)?.attrs.node;
        if (node !== undefined) throw new StanzaError('item-not-found', `no node '${node}'`);
        return xml('query', { xmlns: NS.DISCO_ITEMS }, [...items.values()].map((i) => xml('item', { jid: i.jid, name: i.name })));
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
