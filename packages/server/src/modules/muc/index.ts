import { defineModule } from '../../core/module.ts';
import { MucStore } from '../../storage/index.ts';
import { MucService } from './service.ts';

export { MucService } from './service.ts';
export { Room } from './room.ts';

/**
 * Multi-user chat (XEP-0045) on `modules.muc.host` (default `conference.<domain>`): a
 * component reached through the router, listed in the server's disco#items (XEP-0045
 * §6.1). Rooms carry XEP-0359 stanza-ids and XEP-0421 occupant-ids, answer XEP-0410
 * self-pings, and pass XEP-0249 direct invitations through untouched (those go from user
 * to user).
 */
export const mucModule = defineModule({
  name: 'muc',
  xeps: ['XEP-0045', 'XEP-0249', 'XEP-0359', 'XEP-0410', 'XEP-0421'],
  async load(ctx) {
    const muc = ctx.config.modules.muc;
    const domain = muc.host ?? `conference.${ctx.host}`;
    const service = new MucService({ domain, serverDomain: ctx.host, muc, router: ctx.router, store: new MucStore(ctx.storage, domain), log: ctx.log });
    await service.load();
    ctx.onUnload(ctx.router.addComponent(domain, (stanza, from, to) => service.handle(stanza, from, to)));
    ctx.onUnload(ctx.disco.items.add({ jid: domain, name: muc.name }));
    // XEP-0045 §16.2: occupants learn of the shutdown (332) while their streams are still open.
    ctx.on('server/stopping', () => service.shutdown());
    ctx.onUnload(() => service.close());
    ctx.log.debug({ domain, rooms: service.size }, 'muc: service ready');
  },
});
