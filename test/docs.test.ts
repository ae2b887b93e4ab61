/**
 * Docs that run: every command shown in README.md, docs/*.md and every command's `--help`
 * examples runs as written, in order, in one temporary folder that looks like the root of a clone
 * (examples/ and test/ linked in; node_modules/backprop-teardown linked to this checkout for the
 * "As a package" section), with TEARDOWN_SMOKE=1 so that training and fixes take a few steps.
 * `npx teardown` and `teardown` run bin/teardown.js; `npm` (install, test) is skipped: those are
 * this repository's own commands, not teardown's. Each block must exit 0.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { Command } from 'commander';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BIN = join(ROOT, 'bin/teardown.js');

/** The ```sh blocks of a Markdown file, each as one script. */
export function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((match) => match[1]);
}

/** The commands under "Example:" / "Examples:" of a help text, continuation lines joined. */
export function helpExamples(help: string): string[] {
  const section = help.split(/\nExamples?:\n/)[1];
  if (!section) return [];
  return section
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('teardown '));
}

async function helpTexts(): Promise<{ name: string; help: string }[]> {
  const main = readFileSync(join(ROOT, 'src/cli/main.ts'), 'utf8');
  const entries = [
    ...main.matchAll(/(\w+): async \(\) => \(await import\('\.\/([\w-]+)\.ts'\)\)\.(\w+)\(\)/g),
  ];
  return Promise.all(
    entries.map(async ([, name, file, factory]) => {
      const command = (
        (await import(join(ROOT, `src/cli/${file}.ts`))) as Record<string, () => Command>
      )[factory]();
      let help = '';
      command.configureOutput({
        writeOut: (text) => {
          help += text;
        },
      });
      command.outputHelp();
      return { name, help };
    }),
  );
}

/** A folder that looks like a clone's root to the docs' relative paths. */
function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'teardown-docs-'));
  for (const name of ['examples', 'test']) symlinkSync(join(ROOT, name), join(dir, name));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules/backprop-teardown'));
  return dir;
}

const PRELUDE = `set -e -o pipefail
teardown() { node ${JSON.stringify(BIN)} "$@"; }
npx() { if [ "$1" = teardown ]; then shift; teardown "$@"; else echo "docs test: npx $1 not run" >&2; fi; }
npm() { echo "docs test: npm $* not run" >&2; }
`;

function runScript(script: string, cwd: string) {
  const result = spawnSync('bash', ['-c', PRELUDE + script], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, TEARDOWN_SMOKE: '1' },
    maxBuffer: 64 << 20,
  });
  return { status: result.status, output: `${result.stdout}\n${result.stderr}`.slice(-4000) };
}

const documents = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];

describe('docs that run (TEARDOWN_SMOKE=1)', async () => {
  const cwd = workspace();
  const helps = await helpTexts();

  it('finds the documented commands', () => {
    const blocks = documents.flatMap((path) => shellBlocks(readFileSync(join(ROOT, path), 'utf8')));
    assert.ok(blocks.length >= 12, `${blocks.length} sh blocks`);
    for (const { name, help } of helps)
      assert.ok(helpExamples(help).length >= 1, `${name} --help has no example`);
  });

  for (const path of documents) {
    shellBlocks(readFileSync(join(ROOT, path), 'utf8')).forEach((block, index) => {
      it(`${path}, block ${index + 1}: ${block.split('\n').find((line) => line.includes('teardown')) ?? block.split('\n')[0]}`, () => {
        const { status, output } = runScript(block, cwd);
        assert.equal(status, 0, output);
      });
    });
  }

  for (const { name, help } of helps) {
    for (const example of helpExamples(help)) {
      it(`teardown ${name} --help: ${example}`, () => {
        const { status, output } = runScript(example, cwd);
        assert.equal(status, 0, output);
      });
    }
  }
});
