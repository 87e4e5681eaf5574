export { Server, storageConfigOf, scramHashesOf } from './core/server.ts';
export { defineModule, type ModuleContext, type ModuleDefinition } from './core/module.ts';
export { Hooks, HANDLED, type HookHandler } from './core/hooks.ts';
export { Router, type StanzaEvent, type IqHandler, type AddressKind } from './core/router.ts';
export { SessionManager, type Session } from './core/session.ts';
export { DiscoInfo, type DiscoIdentity } from './core/disco.ts';
export { AccountService } from './core/accounts.ts';
export type { StreamFeatureProvider } from './streams/features.ts';
export * from './config/index.ts';
