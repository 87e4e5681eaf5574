import { release, type } from 'node:os';
import { NS, xml } from '@parley/xmpp';
import { defineModule } from '../core/module.ts';
import { PARLEY_VERSION } from '../core/version.ts';

/** Software Version (XEP-0092): the server's name and version, and its OS when `modules.version.show_os`. */
export const versionModule = defineModule({
  name: 'version',
  xeps: ['XEP-0092'],
  load(ctx) {
    ctx.onUnload(ctx.disco.host.addFeature(NS.VERSION));
    const { name, show_os } = ctx.config.modules.version;
    ctx.iq('host', NS.VERSION, {
      get: () =>
        xml(
          'query',
          { xmlns: NS.VERSION },
          xml('name', null, name),
          xml('version', null, PARLEY_VERSION),
          show_os ? xml('os', null, `${type()} ${release()}`) : null,
        ),
    });
  },
});
