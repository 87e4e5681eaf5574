import type { ModuleDefinition } from '../core/module.ts';
import { blockingModule } from './blocking.ts';
import { capsModule } from './caps.ts';
import { discoModule } from './disco.ts';
import { presenceModule } from './im/index.ts';
import { offlineModule } from './im/offline.ts';
import { lastModule } from './last.ts';
import { mucModule } from './muc/index.ts';
import { legacyAuthModule } from './legacyauth.ts';
import { pingModule } from './ping.ts';
import { privateModule } from './private.ts';
import { registerModule } from './register.ts';
import { timeModule } from './time.ts';
import { vcardModule } from './vcard.ts';
import { versionModule } from './version.ts';

/** The built-in modules, in load order; `modules.disabled` names the ones to skip. */
export const BUILTIN: readonly ModuleDefinition[] = [discoModule, pingModule, versionModule, timeModule, presenceModule, offlineModule, vcardModule, privateModule, registerModule, blockingModule, lastModule, capsModule, legacyAuthModule, mucModule];
