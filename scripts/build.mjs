// Builds the package: tsc compiles src/ (tests excluded) to dist/ as .js and .d.ts, and the data files the
// code reads next to itself are copied beside it. dist/.built is stamped with the build's start time, so
// bin/teardown.js can tell a checkout's sources edited since the build (it then runs the sources).
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = new URL('../', import.meta.url);
const dist = new URL('dist/', root);
const DATA_FILES = ['onnx/onnx.proto'];

const started = new Date();
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', new URL('tsconfig.build.json', root).pathname], { stdio: 'inherit' });
} catch {
  rmSync(dist, { recursive: true, force: true }); // no half-built package
  process.exit(1);
}
for (const file of DATA_FILES) cpSync(new URL(`src/${file}`, root), new URL(file, dist));
const stamp = new URL('.built', dist);
writeFileSync(stamp, `${started.toISOString()}\n`);
utimesSync(stamp, started, started);
