import type { ModuleDefinition } from '../core/module.ts';
import { discoModule } from './disco.ts';
import { pingModule } from './ping.ts';
import { timeModule } from './time.ts';
import { versionModule } from './version.ts';

/** The built-in modules, in load order; `modules.disabled` names the ones to skip. */
export const BUILTIN: readonly ModuleDefinition[] = [discoModule, pingModule, versionModule, timeModule];
