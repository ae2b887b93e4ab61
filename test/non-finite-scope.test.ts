/**
 * --allow-non-finite belongs to its own command line: two in-process calls of main(argv, io),
 * one with the flag and one without, run at the same time on the same NaN rows, and each gets
 * what its own flags say (the flag was once a process-wide switch the last parsed call set).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.ts';
import { fixtureDir } from './helpers.ts';
import { tempDir } from './model-files.ts';

const MODEL = join(fixtureDir('mlp'), 'model.onnx');
const NAN_ROWS = fileURLToPath(new URL('hostile/files/x-nan-rows.npy', import.meta.url));

function collecting() {
  const text = { stdout: '', stderr: '' };
  const io = {
    stdout: { write: (chunk: string) => void (text.stdout += chunk) },
    stderr: { write: (chunk: string) => void (text.stderr += chunk) },
  };
  return { io, text };
}

describe('--allow-non-finite is scoped to its call', () => {
  it('concurrent calls with and without the flag each follow their own', async () => {
    const out = tempDir();
    const runOn = (name: string, extra: string[]) => {
      const call = collecting();
      const argv = ['run', MODEL, '--data', NAN_ROWS, '--out', join(out, name), ...extra];
      return main(argv, call.io).then((code) => ({ code, stderr: call.text.stderr }));
    };
    // Allowed first, refused second, then the other order: each order once.
    for (const allowedFirst of [true, false]) {
      const allowed = runOn(`allowed-${allowedFirst}`, ['--allow-non-finite', '--quiet']);
      const refused = runOn(`refused-${allowedFirst}`, ['--quiet']);
      const [withFlag, without] = allowedFirst
        ? await Promise.all([allowed, refused])
        : (await Promise.all([refused, allowed])).reverse();
      assert.equal(withFlag.code, 0, withFlag.stderr);
      assert.equal(without.code, 2, 'the call without the flag refuses the NaN rows');
      assert.match(without.stderr, /non-finite values/);
    }
  });
});
