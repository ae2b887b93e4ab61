/**
 * Fuzzing the intervention readers (src/cli/interventions.ts): `--interventions FILE` with
 * random JSON, entries of every kind with hostile settings (units, positions, ranges, unit axes,
 * methods, seeds, donors, factors, vectors, value files), byte-order marks and broken text, and
 * the `--ablate/--patch/--scale/--add/--project-out 'HOOK key=value ...'` flags. The files an
 * entry may name lie beside it: a valid .npy, an integer .npy, a damaged one and a folder.
 * Each must give interventions or an InputError.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseInterventionFlags, type InterventionFlags } from '../../src/cli/interventions.ts';
import { encodeNpy } from '../../src/data/npy.ts';
import { InputError } from '../../src/errors.ts';
import { tensor } from '../../src/tensor.ts';
import {
  assertWellBehaved,
  fuzzParameters,
  hostileString,
  inFreshDir,
  mutatedBytes,
} from './support.ts';

const KINDS = ['ablate', 'patch', 'scale', 'add', 'project-out'] as const;
const FILES = ['values.npy', 'ids.npy', 'broken.npy', 'folder.npy', 'missing.npy', '../values.npy'];

const indexText = fc.oneof(
  fc
    .array(fc.integer({ min: -3, max: 40 }), { minLength: 1, maxLength: 4 })
    .map((list) => list.join(',')),
  fc.constantFrom(
    '0:8',
    '-1',
    '3:1',
    '0:99999999999',
    '-99999999999:0',
    '0:16777217',
    '1e3',
    '0x10',
  ),
  fc.constantFrom('', ',', '1,,2', ' 1', '1.5', 'NaN', 'Infinity', '9007199254740993', '2:'),
);
const setting = fc.oneof(
  indexText,
  fc.array(fc.oneof(fc.integer(), fc.double(), fc.constant(null), fc.string()), { maxLength: 4 }),
  fc.constantFrom(...FILES),
  fc.constantFrom('zero', 'mean', 'resample', 'median', '1.5', '-0', '1e309', 'nan'),
  fc.jsonValue({ maxDepth: 2 }),
  hostileString,
);
const KEYS = [
  'units',
  'positions',
  'unitAxis',
  'method',
  'seed',
  'donors',
  'value',
  'factor',
  'vector',
  'scale',
  'direction',
];

/** One entry of an interventions file: a kind, a hook and a few settings, any of them hostile. */
const entry = fc
  .record(
    {
      kind: fc.oneof(fc.constantFrom(...KINDS), fc.jsonValue({ maxDepth: 1 })),
      hook: fc.oneof(fc.constantFrom('act1', 'fc1'), hostileString, fc.jsonValue({ maxDepth: 1 })),
      settings: fc.dictionary(fc.constantFrom(...KEYS, '__proto__', 'constructor'), setting, {
        maxKeys: 4,
      }),
    },
    { requiredKeys: [] },
  )
  .map(({ kind, hook, settings }) => ({
    ...(kind === undefined ? {} : { kind }),
    ...(hook === undefined ? {} : { hook }),
    ...settings,
  }));

const fileText = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .array(
        fc.oneof(
          { weight: 8, arbitrary: entry },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
        ),
        { maxLength: 4 },
      )
      .map((list) => JSON.stringify(list)),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);
const fileBytes = fc.oneof(
  { weight: 6, arbitrary: fileText.map((text) => new Uint8Array(Buffer.from(text))) },
  { weight: 1, arbitrary: fileText.map((text) => new Uint8Array(Buffer.from(`\uFEFF${text}`))) },
  {
    weight: 1,
    arbitrary: fileText.map((text) => new Uint8Array(Buffer.from(`\uFEFF${text}`, 'utf16le'))),
  },
  {
    weight: 2,
    arbitrary: fileText.map((text) => new Uint8Array(Buffer.from(text))).chain(mutatedBytes),
  },
);

/** A flag's text: a hook, then key=value settings, any of them hostile. */
const flagText = fc
  .tuple(
    fc.oneof(fc.constantFrom('act1', 'a b', '/x/Add_output_0'), hostileString),
    fc.array(
      fc.tuple(
        fc.constantFrom(
          'units',
          'positions',
          'unit-axis',
          'method',
          'seed',
          'donors',
          'value',
          'factor',
          'vector',
          'scale',
          'direction',
          'x',
        ),
        fc.oneof(indexText, fc.constantFrom(...FILES), hostileString),
      ),
      { maxLength: 3 },
    ),
  )
  .map(([hook, settings]) =>
    [hook, ...settings.map(([key, value]) => `${key}=${value}`)].join(' '),
  );
const flags = fc.record(
  {
    ablate: fc.array(flagText, { maxLength: 2 }),
    patch: fc.array(flagText, { maxLength: 2 }),
    scale: fc.array(flagText, { maxLength: 2 }),
    add: fc.array(flagText, { maxLength: 2 }),
    projectOut: fc.array(flagText, { maxLength: 2 }),
  },
  { requiredKeys: [] },
);

/** The files entries may name, beside the interventions file. */
function writeNeighbours(dir: string): void {
  writeFileSync(join(dir, 'values.npy'), encodeNpy(tensor('float32', [2, 3], [1, 2, 3, 4, 5, 6])));
  writeFileSync(join(dir, 'ids.npy'), encodeNpy(tensor('int64', [3], [2, 0, 1])));
  writeFileSync(
    join(dir, 'broken.npy'),
    encodeNpy(tensor('float32', [4], [1, 2, 3, 4])).subarray(0, 70),
  );
  mkdirSync(join(dir, 'folder.npy'));
}

describe('fuzz: the intervention readers', { timeout: 60_000 }, () => {
  it('--interventions files: interventions or an InputError', async () => {
    const property = fc.asyncProperty(fileBytes, async (bytes) => {
      await inFreshDir(async (dir) => {
        writeNeighbours(dir);
        const path = join(dir, 'interventions.json');
        writeFileSync(path, bytes);
        await assertWellBehaved(
          () => parseInterventionFlags({ interventions: path }),
          `file of ${bytes.length} bytes`,
        );
      });
    });
    await fc.assert(property, fuzzParameters());
  });

  it('--ablate, --patch, --scale, --add and --project-out flags: interventions or an InputError', async () => {
    const property = fc.asyncProperty(flags, async (given) => {
      await inFreshDir(async (dir) => {
        writeNeighbours(dir);
        const cwd = process.cwd();
        process.chdir(dir); // flags name files relative to the working folder
        try {
          await assertWellBehaved(
            () => parseInterventionFlags(given as InterventionFlags),
            JSON.stringify(given),
          );
        } finally {
          process.chdir(cwd);
        }
      });
    });
    await fc.assert(property, fuzzParameters(0.5));
  });
});

describe('regressions found by fuzzing the intervention readers', () => {
  /** The InputError an interventions file holding `entries` gets (beside the usual neighbours). */
  async function refusal(entries: unknown): Promise<string> {
    return inFreshDir((dir) => {
      writeNeighbours(dir);
      const path = join(dir, 'interventions.json');
      writeFileSync(path, JSON.stringify(entries));
      try {
        parseInterventionFlags({ interventions: path });
      } catch (error) {
        assert.ok(error instanceof InputError, String((error as Error).stack));
        return error.message;
      }
      return assert.fail(`accepted ${JSON.stringify(entries)}`);
    });
  }

  it('an entry without a kind says so (was "got undefined")', async () => {
    assert.match(await refusal([{}]), /entry 0's kind must be one of 'ablate', .*, got none\./);
  });

  it('settings that are objects are shown as JSON (was "[object Object]")', async () => {
    assert.match(
      await refusal([{ kind: 'ablate', hook: 'act1', units: {} }]),
      /units must be integers .*got \{\}\./,
    );
    assert.match(
      await refusal([{ kind: 'ablate', hook: 'act1', method: [{}] }]),
      /method must be zero, mean or resample, got \[\{\}\]\./,
    );
  });

  it('numbers are numbers: null, [], "", "0x10" and "1e3" are not read as 0, 16 or 1000', async () => {
    // Before: units [null] and [[]] were unit 0, "0x10" unit 16, "1e3" unit 1000; factor null
    // scaled by 0; vector "1,,2" was [1, 0, 2].
    for (const units of [[null], [[]], '0x10', '1e3', [true]]) {
      assert.match(
        await refusal([{ kind: 'ablate', hook: 'act1', units }]),
        /units must be integers/,
      );
    }
    assert.match(
      await refusal([{ kind: 'scale', hook: 'act1', factor: null }]),
      /needs factor=NUMBER, got null/,
    );
    assert.match(
      await refusal([{ kind: 'scale', hook: 'act1', factor: '0x10' }]),
      /needs factor=NUMBER, got '0x10'/,
    );
    assert.match(
      await refusal([{ kind: 'add', hook: 'act1', vector: '1,,2' }]),
      /vector must be a \.npy file or numbers/,
    );
    assert.match(
      await refusal([{ kind: 'add', hook: 'act1', vector: [1, null] }]),
      /vector must be a \.npy file or numbers/,
    );
    assert.match(
      await refusal([{ kind: 'add', hook: 'act1', vector: [1], scale: '' }]),
      /scale must be a number/,
    );
  });

  it('well-formed entries still read as before', async () => {
    await inFreshDir((dir) => {
      writeNeighbours(dir);
      const path = join(dir, 'interventions.json');
      const entries = [
        {
          kind: 'ablate',
          hook: 'act1',
          units: '0:3,7',
          method: 'resample',
          seed: '4',
          donors: [2, 0],
        },
        { kind: 'scale', hook: 'fc1', units: [1, 2], factor: '-1.5e0' },
        { kind: 'add', hook: 'act1', vector: '1.5,-2,.5', scale: 2 },
      ];
      writeFileSync(path, JSON.stringify(entries));
      const parsed = parseInterventionFlags({ interventions: path }).interventions;
      const [ablate, scale, add] = parsed as unknown as Record<string, unknown>[];
      assert.deepEqual([ablate.units, scale.units, add.units], [[0, 1, 2, 7], [1, 2], undefined]);
      assert.equal(scale.factor, -1.5);
      assert.deepEqual(add.vector, [3, -4, 1]);
      assert.deepEqual(ablate.donors, [2, 0]);
    });
  });
});
