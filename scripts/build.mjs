// Builds the package: tsc compiles src/ (tests excluded) to dist/ as .js and .d.ts, and the data files the
// code reads next to itself are copied beside it. The build is written to a staging folder and renamed
// into place, so a command running meanwhile sees the old dist/ or the new one, whole. dist/.built is
// stamped with the build's start time: bin/teardown.js runs the sources instead when they are newer.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = (path) => fileURLToPath(new URL(`../${path}`, import.meta.url));
const DATA_FILES = ['onnx/onnx.proto'];

const started = new Date();
const staging = root(`dist.building-${process.pid}`);
const previous = root(`dist.previous-${process.pid}`);
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', root('tsconfig.build.json'), '--outDir', staging], {
    stdio: 'inherit',
  });
  for (const file of DATA_FILES) cpSync(root(`src/${file}`), `${staging}/${file}`);
  const stamp = `${staging}/.built`;
  writeFileSync(stamp, `${started.toISOString()}\n`);
  utimesSync(stamp, started, started);
  if (existsSync(root('dist'))) renameSync(root('dist'), previous);
  renameSync(staging, root('dist'));
} catch (error) {
  if (error.status === undefined) console.error(error); // tsc printed its own errors
  process.exitCode = 1;
} finally {
  rmSync(staging, { recursive: true, force: true }); // no half-built package
  rmSync(previous, { recursive: true, force: true });
}
