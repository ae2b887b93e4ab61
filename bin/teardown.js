#!/usr/bin/env node
// The `teardown` command runs the compiled package (dist/, built by `npm run build`, which `npm ci`
// and `npm test` run). In a checkout whose src/ changed after the last build it runs the sources
// through tsx (a development dependency) instead, so a test or `npx teardown` never runs stale code.
// cli/bin runs `main(argv, io)` (cli/main.ts) on the process's arguments and sets the exit status.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const sources = fileURLToPath(new URL('../src/', import.meta.url));
const buildStamp = fileURLToPath(new URL('../dist/.built', import.meta.url));

if (sourcesChangedSinceBuild()) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/bin.ts');
} else {
  await import('../dist/cli/bin.js');
}

/** A packed install has no src/; in a checkout, any source file or folder newer than the build counts. */
function sourcesChangedSinceBuild() {
  if (!existsSync(sources)) return false;
  if (!existsSync(buildStamp)) return true;
  const builtAt = statSync(buildStamp).mtimeMs;
  if (statSync(sources).mtimeMs > builtAt) return true;
  return readdirSync(sources, { recursive: true })
    .filter((path) => !path.endsWith('.test.ts'))
    .some((path) => statSync(join(sources, path)).mtimeMs > builtAt);
}
