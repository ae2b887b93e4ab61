/**
 * Startup loads only what the command runs (README "As a package": `teardown --version` in about
 * 0.1 s). Times are too noisy to test on a shared machine; the modules loaded are not: a module
 * resolve hook records every module the command imports, and the heavy dependencies must be absent.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const MNIST_MODEL = fileURLToPath(new URL('../examples/mnist-mlp.onnx', import.meta.url));

const RECORDING_HOOK = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.TEARDOWN_RESOLVED_LOG, resolved.url + '\\n');
  return resolved;
}
`;

describe('startup loads only the command that runs', () => {
  const work = mkdtempSync(join(tmpdir(), 'teardown-startup-'));
  after(() => rmSync(work, { recursive: true, force: true }));
  writeFileSync(join(work, 'hook.mjs'), RECORDING_HOOK);
  writeFileSync(
    join(work, 'register.mjs'),
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(work, 'hook.mjs')).href)});\n`,
  );

  /** The packages (under node_modules) a teardown command line imports. */
  function packagesLoaded(args: string[]): Set<string> {
    const log = join(work, `${args[0]}.log`);
    writeFileSync(log, '');
    const result = spawnSync(
      process.execPath,
      ['--import', pathToFileURL(join(work, 'register.mjs')).href, BIN, ...args],
      {
        encoding: 'utf8',
        env: { ...process.env, TEARDOWN_RESOLVED_LOG: log },
      },
    );
    assert.equal(result.status, 0, result.stderr);
    const urls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    return new Set(
      urls
        .map((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1])
        .filter((name) => name !== undefined),
    );
  }

  it('--version loads commander and none of onnxruntime, protobufjs or vega', () => {
    const loaded = packagesLoaded(['--version']);
    assert.ok(loaded.has('commander'), 'the hook records imports');
    for (const heavy of ['onnxruntime-node', 'protobufjs', 'vega', 'vega-lite'])
      assert.ok(!loaded.has(heavy), `${heavy} loaded`);
  });

  it('hooks on the MNIST example loads onnxruntime but not vega', () => {
    const loaded = packagesLoaded(['hooks', MNIST_MODEL, '--modules']);
    assert.ok(loaded.has('onnxruntime-node'));
    for (const heavy of ['vega', 'vega-lite']) assert.ok(!loaded.has(heavy), `${heavy} loaded`);
  });

  it('audit --help loads no vega (it is imported when a report chart is rendered)', () => {
    const loaded = packagesLoaded(['audit', '--help']);
    for (const heavy of ['vega', 'vega-lite']) assert.ok(!loaded.has(heavy), `${heavy} loaded`);
  });
});
