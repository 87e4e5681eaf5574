import { defineModule } from '../../core/module.ts';
import { installPresence, PresenceService } from './presence.ts';
import { installRoster } from './roster.ts';
import { RosterService } from './roster-service.ts';

/**
 * Instant messaging and presence (RFC 6121): the roster (§2, with XEP-0237
 * versioning), subscriptions (§3, with pre-approval §3.4) and presence (§4).
 */
export const presenceModule = defineModule({
  name: 'presence',
  xeps: ['RFC 6121', 'XEP-0237'],
  load(ctx) {
    const roster = new RosterService(ctx);
    const presence = new PresenceService(ctx, roster);
    installRoster(ctx, roster, presence, ctx.config.modules.roster.max_items);
    installPresence(ctx, presence, roster);
  },
});
