#!/usr/bin/env node
// The `parley` command. Runs the TypeScript sources through tsx's loader.
import { register } from 'tsx/esm/api';
register();
await import('../packages/server/src/cli/main.ts');
