/**
 * The package as a user gets it: `npm pack` the project, install the tarball into a fresh TypeScript
 * project (its own package.json and tsconfig, NodeNext, strict), type-check a program that imports
 * 'backprop-teardown' and run the compiled JavaScript with plain node, no tsx. The program caches a
 * hook of the PyTorch mlp fixture; the oracle is PyTorch's own value of that hook.
 *
 * The tarball is packed from dist/ as built (`npm test` builds first); packing does not rebuild, since
 * other tests run bin/teardown.js from dist/ at the same time.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { readNpy } from '../src/data/npy.ts';
import { assertClose, fixtureDir } from './helpers.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

const CONSUMER_PACKAGE = {
  name: 'consumer',
  private: true,
  type: 'module',
  // onnxruntime-node's install script would download CUDA binaries on linux/x64 (README "as a package").
  allowScripts: { 'onnxruntime-node': false },
};

const CONSUMER_TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    outDir: 'out',
    rootDir: 'src',
  },
  include: ['src'],
};

// Typed use of the API: a wrong argument type must be a type error (so the types are not `any`).
const CONSUMER_PROGRAM = `
import { writeFileSync } from 'node:fs';
import { Model, encodeNpy, readNpy, runWithCache, VERSION, type RunResult, type Tensor } from 'backprop-teardown';

const model: Model = Model.load('model.onnx', { threads: 1 });
const input: Tensor = readNpy('input.npy');
const result: RunResult = await runWithCache(model, { [model.inputs[0].name]: input }, ['act1']);
const act1: Tensor | undefined = result.cache.get('act1');
if (!act1) throw new Error('act1 was not cached');
writeFileSync('act1.npy', encodeNpy(act1));
console.log(\`backprop-teardown \${VERSION}: act1 [\${act1.dims.join(', ')}], first value \${act1.data[0]}\`);
await model.release();

export function typesAreChecked(): void {
  // @ts-expect-error Model.load takes a path, not a number
  Model.load(42);
}
`;

describe('the packed package in a fresh TypeScript project', () => {
  const work = mkdtempSync(join(tmpdir(), 'teardown-package-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  it('installs from the tarball, type-checks, runs on plain node and caches act1 as PyTorch computes it', () => {
    assertBuildCurrent();
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
        cwd: ROOT,
        encoding: 'utf8',
      }),
    );
    const tarball = join(work, packed[0].filename);
    const packedFiles: string[] = packed[0].files.map((file: { path: string }) => file.path);
    assert.ok(
      packedFiles.includes('dist/index.d.ts') && packedFiles.includes('bin/teardown.js'),
      'the tarball holds the build and the command',
    );
    assert.ok(
      !packedFiles.some((path) => path.startsWith('src/') || path.startsWith('test/')),
      'the tarball holds no sources or tests',
    );

    const consumer = join(work, 'consumer');
    mkdirSync(join(consumer, 'src'), { recursive: true });
    writeFileSync(join(consumer, 'package.json'), JSON.stringify(CONSUMER_PACKAGE, null, 2));
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(CONSUMER_TSCONFIG, null, 2));
    writeFileSync(join(consumer, 'src/main.ts'), CONSUMER_PROGRAM);
    const mlp = fixtureDir('mlp');
    copyFileSync(join(mlp, 'model.onnx'), join(consumer, 'model.onnx'));
    copyFileSync(join(mlp, 'input.npy'), join(consumer, 'input.npy'));

    // Dependencies from the registry (its cache first); the environment variable also stops
    // onnxruntime-node's CUDA download under npm versions older than allowScripts.
    const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' };
    execFileSync(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, '@types/node@20'],
      { cwd: consumer, env, stdio: 'pipe' },
    );
    assert.ok(
      !existsSync(join(consumer, 'node_modules/tsx')),
      'tsx is a development dependency only',
    );

    execFileSync(process.execPath, [TSC, '-p', consumer], { cwd: consumer, stdio: 'pipe' });
    const printed = execFileSync(process.execPath, ['out/main.js'], {
      cwd: consumer,
      encoding: 'utf8',
    });
    assert.match(printed, /^backprop-teardown \d+\.\d+\.\d+: act1 \[16, 32\], first value /);
    assertClose(
      readNpy(join(consumer, 'act1.npy')),
      readNpy(join(mlp, 'act/act1.npy')),
      1e-5,
      'act1',
    );

    // The command, as installed: README "As a package".
    const listing = execFileSync(
      join(consumer, 'node_modules/.bin/teardown'),
      ['hooks', 'node_modules/backprop-teardown/examples/mnist-mlp.onnx', '--modules'],
      { cwd: consumer, encoding: 'utf8' },
    );
    assert.match(listing, /^act1 +Relu +float32 +\[batch, 64\]/m);
  });
});

/** dist/ must hold the current sources: the build stamp is newer than every source file. */
function assertBuildCurrent(): void {
  const stamp = join(ROOT, 'dist/.built');
  assert.ok(existsSync(stamp), 'dist/ is not built: run `npm run build` (npm test does)');
  const builtAt = statSync(stamp).mtimeMs;
  const sources = join(ROOT, 'src');
  const changed = readdirSync(sources, { recursive: true, encoding: 'utf8' })
    .filter((path) => !path.endsWith('.test.ts'))
    .filter((path) => statSync(join(sources, path)).mtimeMs > builtAt);
  assert.deepEqual(
    changed,
    [],
    'src/ changed after the last build: run `npm run build` (npm test does)',
  );
}
