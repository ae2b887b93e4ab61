/**
 * The layers of src/ point down only (docs/design.md, "Layers"): every import in a library module
 * names a module of its own layer or of a layer below. Tests (`*.test.ts`) may import anything.
 * Imports are read by TypeScript's own pre-processor: static imports, `import type`, re-exports
 * and dynamic `import()` alike. Three rules the layering alone cannot state sit beside it:
 * onnxruntime sessions open in runtime/ only, and ONNX element types are named, not bare codes.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/**
 * Lowest first: a module may import from its own layer and the layers before it. A layer is a
 * folder of src/ or a file at its top (`errors` is src/errors.ts); docs/design.md says why.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['errors', 'tensor', 'tensor-math', 'files', 'progress', 'random', 'stats', 'version'],
  ['data'],
  ['onnx'],
  ['graph'],
  ['runtime'],
  ['autodiff'],
  ['train'],
  ['inspect'],
  ['audit'],
  ['api'],
  ['demo', 'sweep', 'race'],
  ['index'],
  ['report'],
  ['cli'],
];

const RANK = new Map(LAYERS.flatMap((layer, rank) => layer.map((name) => [name, rank] as const)));

/** Every .ts file under src/, as paths relative to src/ with '/' separators. */
function sourceFiles(folder = SRC): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [relative(SRC, path).split(sep).join('/')] : [];
  });
}

const isTest = (file: string) => file.endsWith('.test.ts');
const libraryModules = () => sourceFiles().filter((file) => !isTest(file));

/** The layer a module belongs to: its top folder under src/, or its own name at the top. */
function layerOf(file: string): string {
  const [top, ...rest] = file.split('/');
  return rest.length > 0 ? top : top.replace(/\.ts$/, '');
}

/** Every module specifier the source imports or re-exports, statically or dynamically. */
function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((imported) => imported.fileName);
}

/** Imports of `file` (relative to src/) that resolve inside src/, as paths relative to src/. */
function localImportsOf(file: string, source: string): string[] {
  return importsOf(source)
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) =>
      relative(SRC, resolve(SRC, dirname(file), specifier))
        .split(sep)
        .join('/'),
    )
    .filter((target) => !target.startsWith('..'));
}

/** 'a imports b' for each import of a module from a layer above its own. */
function upwardImports(files: Iterable<[file: string, source: string]>): string[] {
  const found: string[] = [];
  for (const [file, source] of files) {
    const from = layerOf(file);
    for (const target of localImportsOf(file, source)) {
      const to = layerOf(target);
      if ((RANK.get(to) ?? -1) > (RANK.get(from) ?? Infinity)) {
        found.push(`src/${file} (${from}) imports src/${target} (${to}, a layer above)`);
      }
    }
  }
  return found;
}

const read = (file: string): [string, string] => [file, readFileSync(join(SRC, file), 'utf8')];

describe('layers', () => {
  it('reads static, type-only, re-exported and dynamic imports', () => {
    const source = [
      "import type { InputShape } from '../train/builders.ts';",
      "export { NpyFile } from './npy.ts';",
      "const cli = await import('../cli/main.ts');",
    ].join('\n');
    assert.deepEqual(localImportsOf('data/tasks.ts', source), [
      'train/builders.ts',
      'data/npy.ts',
      'cli/main.ts',
    ]);
    assert.deepEqual(upwardImports([['data/tasks.ts', source]]), [
      'src/data/tasks.ts (data) imports src/train/builders.ts (train, a layer above)',
      'src/data/tasks.ts (data) imports src/cli/main.ts (cli, a layer above)',
    ]);
  });

  it('places every folder and top-level module of src/ in a layer', () => {
    const unplaced = [...new Set(libraryModules().map(layerOf))].filter(
      (layer) => !RANK.has(layer),
    );
    assert.deepEqual(unplaced, [], 'add each to LAYERS here and to the layers in docs/design.md');
  });

  it('has no library module import from a layer above its own', () => {
    assert.deepEqual(upwardImports(libraryModules().map(read)), []);
  });

  it('opens onnxruntime sessions in runtime/ only', () => {
    const opening = libraryModules()
      .filter((file) => layerOf(file) !== 'runtime')
      .map(read)
      .filter(
        ([, source]) =>
          importsOf(source).includes('onnxruntime-node') || /\bSession\.create\(/.test(source),
      )
      .map(([file]) => `src/${file}`);
    assert.deepEqual(opening, [], 'ask runtime/ for a session (runtime/session.ts openSession)');
  });

  it('names ONNX element types (DataType in onnx/proto.ts), never bare codes', () => {
    // `tensor.dataType === 1`, `{ to: int(7) }`, `{ to: int(wide ? 11 : 1) }`,
    // `elementTypes.get(v) ?? 1`,
    // `{ float32: 1, float64: 11 }[dtype]`, `dtype === 'float64' ? 11 : 1`
    const bareCode = new RegExp(
      [
        /\b(?:dataType|elemType)\s*[!=]==?\s*\d/,
        /\bto: int\((?:\d+|[^{};]*\? \d+ : \d+)\)/,
        /\b(?:elementTypes|types)\.get\([^)]*\) \?\? \d/,
        /\bfloat(?:16|32|64): (?:1|10|11)\b/,
        /'float(?:16|32|64)' \? \d/,
      ]
        .map((pattern) => pattern.source)
        .join('|'),
    );
    const bare = libraryModules()
      .map(read)
      .flatMap(([file, source]) =>
        source
          .split('\n')
          .map((line, at) =>
            bareCode.test(line) ? `src/${file}:${at + 1}: ${line.trim().slice(0, 80)}` : '',
          )
          .filter(Boolean),
      );
    assert.deepEqual(bare, []);
  });
});
