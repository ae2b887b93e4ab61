/**
 * docs/api is current: typedoc run on the sources now (typedoc.json, into a temporary folder)
 * writes exactly the files committed in docs/api. When a public name or its doc comment changes,
 * `npm run docs:api` regenerates them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COMMITTED = join(ROOT, 'docs/api');
const TYPEDOC = join(ROOT, 'node_modules/typedoc/bin/typedoc');

const filesIn = (dir: string) =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
    .sort();

/** The first line where two texts differ, for the failure message. */
function firstDifference(committed: string, generated: string): string {
  const [a, b] = [committed.split('\n'), generated.split('\n')];
  const line = a.findIndex((text, i) => text !== b[i]);
  const at = line === -1 ? a.length : line;
  return `line ${at + 1}: committed ${JSON.stringify(a[at] ?? '(end)')}, generated ${JSON.stringify(b[at] ?? '(end)')}`;
}

describe('docs/api', () => {
  it('is what typedoc generates from the sources now (else run npm run docs:api)', () => {
    const out = mkdtempSync(join(tmpdir(), 'teardown-api-docs-'));
    try {
      const result = spawnSync(process.execPath, [TYPEDOC, '--out', out], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      assert.equal(result.status, 0, `typedoc failed:\n${result.stdout}${result.stderr}`);
      assert.deepEqual(
        filesIn(out),
        filesIn(COMMITTED),
        'docs/api has other files than typedoc writes: run npm run docs:api',
      );
      for (const file of filesIn(out)) {
        const [committed, generated] = [
          readFileSync(join(COMMITTED, file), 'utf8'),
          readFileSync(join(out, file), 'utf8'),
        ];
        assert.ok(
          committed === generated,
          `docs/api/${file} is out of date (${firstDifference(committed, generated)}): run npm run docs:api`,
        );
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
