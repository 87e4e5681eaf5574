import { NS, xml } from '@parley/xmpp';
import { defineModule } from '../core/module.ts';

/**
 * Entity Time (XEP-0202): the server's UTC time and offset. `utc` is an
 * XEP-0082 DateTime with milliseconds; `tzo` is the offset of the server's zone.
 */
export const timeModule = defineModule({
  name: 'time',
  xeps: ['XEP-0202'],
  load(ctx) {
    ctx.onUnload(ctx.disco.host.addFeature(NS.TIME));
    ctx.iq('host', NS.TIME, {
      get: () => {
        const now = new Date();
        const off = -now.getTimezoneOffset();
        const sign = off < 0 ? '-' : '+';
        const abs = Math.abs(off);
        const tzo = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
        return xml('time', { xmlns: NS.TIME }, xml('tzo', null, tzo), xml('utc', null, now.toISOString()));
      },
    });
  },
});
