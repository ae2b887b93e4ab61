/**
 * README's "As a library" example runs as written: the fenced block is read from README.md, its
 * import of 'backprop-teardown' pointed at src/index.ts, and the module run (paths are relative to
 * the repository root, as in the README).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, it } from 'node:test';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The first ```ts block of the README section titled `heading`. */
function exampleOf(heading: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `README.md has no section '${heading}'`);
  const section = readme.slice(start + 1).split(/\n## /)[0];
  const block = /```ts\n([\s\S]*?)\n```/.exec(section);
  assert.ok(block, `the section '${heading}' has no \`\`\`ts block`);
  return block[1];
}

const folder = mkdtempSync(join(tmpdir(), 'teardown-readme-'));
after(() => rmSync(folder, { recursive: true, force: true }));

it("README's 'As a library' example runs", async () => {
  const code = exampleOf('As a library');
  assert.match(code, /from 'backprop-teardown'/);
  const file = join(folder, 'example.mts'); // an ES module wherever it lies (top-level await)
  writeFileSync(
    file,
    code.replace(
      /from 'backprop-teardown'/g,
      `from '${pathToFileURL(join(ROOT, 'src/index.ts')).href}'`,
    ),
  );
  process.chdir(ROOT);
  const printed: unknown[][] = [];
  const log = console.log;
  console.log = (...values: unknown[]) => {
    printed.push(values);
  };
  try {
    await import(pathToFileURL(file).href);
  } finally {
    console.log = log;
  }
  assert.equal(printed.length, 4);
  const [loss, dims] = printed[3] as [number, number[]];
  assert.ok(Number.isFinite(loss) && loss > 0);
  assert.deepEqual(dims, [4, 10, 32]);
});
