#!/usr/bin/env node
// teardown runs from its TypeScript sources: tsx compiles them on load, so `npm ci` needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
