/**
 * Comments and docs cite files that exist: every path under src/, docs/, bench/, test/, scripts/
 * or examples/ named in a comment of the sources, tests and benches, or anywhere in README.md,
 * CHANGELOG.md, bench/RESULTS.md, test/README.md and docs/*.md (generated docs/api aside), is a
 * file or folder of the checkout — relative to the repository or to the citing file; a source
 * cited from its folder under src/ (`runtime/weight-file.ts`) is a file there. Nothing cites the
 * team's notes outside the repository (DESIGN.md, STYLE.md, ../shared).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SKIPPED = new Set([
  'node_modules',
  'dist',
  'corpus',
  'fixtures',
  'api',
  'test-output',
  'scratch',
]);

/** A cited path: a top folder, then path characters, ending on a name character. */
const CITATION = /(?<![\w./@-])((?:src|docs|bench|test|scripts|examples)\/[\w./*-]*[\w*])/g;

function filesUnder(folder: string, pattern: RegExp): string[] {
  return readdirSync(join(ROOT, folder)).flatMap((name) => {
    const path = join(folder, name);
    if (SKIPPED.has(name)) return [];
    if (statSync(join(ROOT, path)).isDirectory()) return filesUnder(path, pattern);
    return pattern.test(name) ? [path] : [];
  });
}

/** The comments of a TypeScript or Python file: block and line comments, docstrings. */
function commentsOf(path: string, text: string): string {
  const blocks = path.endsWith('.py')
    ? [...text.matchAll(/"""[\s\S]*?"""|#.*$/gm)]
    : [...text.matchAll(/\/\*[\s\S]*?\*\/|(?<![:'"`\w])\/\/.*$/gm)];
  return blocks.map((match) => match[0]).join('\n');
}

function citations(path: string): string[] {
  const text = readFileSync(join(ROOT, path), 'utf8');
  const searched = path.endsWith('.md') ? text : commentsOf(path, text);
  return [...searched.matchAll(CITATION), ...searched.matchAll(SOURCE_CITATION)]
    .map((match) => match[1])
    .filter((cited) => !/[*{}$<]/.test(cited));
}

/** A source file cited from its folder under src/ (`runtime/weight-file.ts`), as docs and comments do. */
const SOURCE_CITATION =
  /(?<![\w./@-])((?:onnx|graph|autodiff|runtime|train|data|inspect|audit|report|api|cli|sweep)\/[\w./-]*\.(?:ts|proto))\b/g;

const exists = (cited: string, citing: string) =>
  existsSync(join(ROOT, cited)) ||
  existsSync(join(ROOT, dirname(citing), cited)) ||
  existsSync(join(ROOT, 'src', cited));

describe('cited paths', () => {
  it('every src/, docs/, bench/, test/, scripts/ and examples/ path cited in comments and docs exists', () => {
    const sources = ['src', 'bench', 'test', 'scripts'].flatMap((folder) =>
      filesUnder(folder, /\.(ts|py|mjs)$/),
    );
    const docs = [
      'README.md',
      'CHANGELOG.md',
      'bench/RESULTS.md',
      'test/README.md',
      ...filesUnder('docs', /\.md$/),
    ];
    const cited = [...sources, ...docs].flatMap((path) =>
      citations(path).map((citation) => ({ path, citation })),
    );
    assert.ok(
      cited.length > 200,
      `found only ${cited.length} citations in ${sources.length} sources and ${docs.length} docs`,
    );
    const missing = cited
      .filter(({ path, citation }) => !exists(citation, path))
      .map(({ path, citation }) => `${path}: ${citation}`);
    assert.deepEqual(
      [...new Set(missing)],
      [],
      `cited paths that do not exist (${relative(process.cwd(), ROOT) || '.'}):\n${missing.join('\n')}`,
    );
  });

  it('no comment or doc cites the team notes outside the repository (DESIGN.md, STYLE.md, ../shared)', () => {
    const sources = ['src', 'bench', 'test', 'scripts'].flatMap((folder) =>
      filesUnder(folder, /\.(ts|py|mjs)$/),
    );
    const docs = [
      'README.md',
      'bench/RESULTS.md',
      'test/README.md',
      ...filesUnder('docs', /\.md$/),
    ];
    const outside = /\b(?:DESIGN|STYLE)\.md\b|\.\.\/shared\//;
    const citing = [...sources, ...docs].filter((path) => {
      const text = readFileSync(join(ROOT, path), 'utf8');
      return outside.test(path.endsWith('.md') ? text : commentsOf(path, text));
    });
    assert.deepEqual(
      citing.filter((path) => path !== 'test/cited-paths.test.ts'),
      [],
    );
  });

  it('finds a stale citation', () => {
    const text = ['/** see src', 'no-such-file.ts and src', 'errors.ts */'].join('/');
    const found = [...commentsOf('x.ts', text).matchAll(CITATION)].map((match) => match[1]);
    assert.deepEqual(
      found.filter((cited) => !exists(cited, 'x.ts')),
      ['src/no-such-file.ts'],
    );
  });
});
