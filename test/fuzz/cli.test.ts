/**
 * Fuzzing the command line in-process through `main(argv, io)`: every command with random flags
 * (its own and others'), values (numbers in every form, names, patterns, interventions, output
 * paths) and files from the hostile corpus (test/hostile/files) beside the mlp fixture. Each case
 * runs in a fresh folder holding those files, and must:
 *   - exit 0, 2 or 3 (1 is a bug in teardown);
 *   - print no stack trace;
 *   - write, create or remove nothing but under the --out, --json, --report or --checkpoint paths
 *     it was given (the folder is listed and hashed before and after);
 *   - on a refusal (exit 2), leave the folder exactly as it was: outputs whole or absent;
 *   - leave no temporary or staging file anywhere in it.
 * Runs at TEARDOWN_SMOKE size, so that the commands that train or audit take a few steps.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { main } from '../../src/cli/main.ts';
import { allowNonFinite } from '../../src/data/validate.ts';
import { fixtureDir } from '../helpers.ts';
import { HOSTILE_DIR } from '../hostile/make.ts';
import { FUZZ_RUNS, fuzzParameters, hostileString, inFreshDir } from './support.ts';

const HOSTILE_FILES = readdirSync(HOSTILE_DIR);
const byExtension = (extension: string) => HOSTILE_FILES.filter((name) => name.endsWith(extension));

// Values, from the files every case folder holds (the hostile corpus and model.onnx, the mlp).
const model = fc.oneof(
  { weight: 6, arbitrary: fc.constant('model.onnx') },
  { weight: 3, arbitrary: fc.constantFrom(...byExtension('.onnx')) },
  { weight: 1, arbitrary: fc.constantFrom('missing.onnx', 'a-file', '.', 'x.npy') },
);
const npy = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('x.npy', 'x.npy', 'labels.npy') },
  { weight: 3, arbitrary: fc.constantFrom(...byExtension('.npy')) },
  { weight: 1, arbitrary: fc.constantFrom('missing.npy', 'model.onnx', '.') },
);
const table = fc.constantFrom(...byExtension('.csv'), 'x.npy');
const anyFile = fc.oneof(model, npy, table, fc.constantFrom(...HOSTILE_FILES), hostileString);
const number = fc.oneof(
  fc.constantFrom('1', '1', '2', '0', '-1', '3', '64'),
  fc.constantFrom('2.5', '1e999', '-1e999', 'NaN', 'Infinity', '0x10', '1e3', '', 'abc', ' 4'),
  fc.constantFrom('99999999999', '4294967297', '9007199254740993', '-0', '1_000'),
);
const fraction = fc.constantFrom('0.5', '0', '1', '1.5', '-0.1', 'NaN', '1e-9');
const namedFile = fc.oneof(
  { weight: 4, arbitrary: npy.map((file) => `input=${file}`) },
  {
    weight: 1,
    arbitrary: fc.tuple(hostileString, anyFile).map(([name, file]) => `${name}=${file}`),
  },
  { weight: 1, arbitrary: fc.constantFrom('input', '=x.npy', 'input=', 'a=b=c') },
);
const hookPattern = fc.oneof(
  fc.constantFrom('*', 'act1', 'fc1', 'act*', '/fc1/*', 'nosuch'),
  hostileString,
);
const intervention = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('act1', 'fc1', 'nosuch'),
      fc.constantFrom(
        'units=0,1',
        'units=0:99999999999',
        'units=-1',
        'positions=0',
        'method=mean',
        'factor=2',
        'value=x.npy',
        'vector=1,2',
        'direction=x.npy',
        '',
      ),
    )
    .map(([hook, setting]) => `${hook} ${setting}`),
  hostileString,
);
/** Output paths: fresh, nested, an existing file or folder, the corpus's own files, devices, '-'. */
const outDir = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('out', 'out', 'out/deep/er', 'o u t') },
  {
    weight: 2,
    arbitrary: fc.constantFrom('x.npy', 'a-file/sub', '.', '', '/dev/null', '-', 'model.onnx'),
  },
  { weight: 1, arbitrary: hostileString },
);
const jsonOut = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('result.json', 'result.json', '-', 'out/r.json') },
  { weight: 2, arbitrary: fc.constantFrom('x.npy', 'a-file/r.json', '.', '', '/dev/null', 'out') },
  { weight: 1, arbitrary: hostileString },
);
const modelSpec = fc.constantFrom(
  'mlp:hidden=4',
  'mlp:hidden=99999999999',
  'mlp:hidden=0',
  'transformer:layers=1,heads=1,d_model=8,d_mlp=8',
  'cnn',
  'from:model.onnx',
  'nope:x',
);
const task = fc.constantFrom(
  'npy:x.npy',
  'npy:x.npy,labels.npy',
  'csv:table.csv',
  'csv:table-hex.csv',
  'modular-addition',
  'nope',
  'npy:missing.npy',
);

type Value = fc.Arbitrary<string> | null; // null: a flag without a value
const COMMON: Record<string, Value> = {
  '--json': jsonOut,
  '--quiet': null,
  '--verbose': null,
  '--threads': number,
  '--allow-non-finite': null,
  '--help': null,
};
const MODEL_INPUTS: Record<string, Value> = { '--input': namedFile, '--data': npy };

interface CommandSpec {
  weight: number;
  positional: fc.Arbitrary<string[]>;
  flags: Record<string, Value>;
  /** Flags that make a working command with model.onnx and the corpus's x.npy and labels.npy. */
  working?: string[];
  /** Flags every line of this command gets (demo: one value it refuses, as a full demo takes seconds). */
  forced?: fc.Arbitrary<string[]>;
}

const COMMANDS: Record<string, CommandSpec> = {
  hooks: {
    weight: 3,
    positional: model.map((m) => [m]),
    flags: {
      ...MODEL_INPUTS,
      '--dim': fc.constantFrom('batch=2', 'features=99999999999', 'x=-1', 'batch'),
      '--modules': null,
    },
    working: ['--json', 'result.json'],
  },
  run: {
    weight: 5,
    positional: model.map((m) => [m]),
    flags: {
      ...MODEL_INPUTS,
      '--cache': hookPattern,
      '--ablate': intervention,
      '--patch': intervention,
      '--scale': intervention,
      '--add': intervention,
      '--project-out': intervention,
      '--interventions': fc.oneof(fc.constantFrom(...byExtension('.json')), anyFile),
      '--reference': namedFile,
      '--out': outDir,
      '--batch-size': number,
      '--no-compare': null,
    },
    working: ['--input', 'input=x.npy', '--cache', '*', '--out', 'out'],
  },
  grad: {
    weight: 4,
    positional: model.map((m) => [m]),
    flags: {
      ...MODEL_INPUTS,
      '--labels': npy,
      '--loss': fc.constantFrom('cross-entropy', 'mse', 'nope'),
      '--wrt': fc.constantFrom('parameters', 'input', 'act1', '*', 'nope'),
      '--output': fc.constantFrom('output', 'nope'),
      '--loss-positions': fc.constantFrom('all', 'last', 'nope'),
      '--ignore-index': number,
      '--out': outDir,
      '--batch-size': number,
    },
    working: ['--input', 'input=x.npy', '--labels', 'labels.npy', '--out', 'out'],
  },
  train: {
    weight: 3,
    positional: fc.constant([]),
    flags: {
      '--task': task,
      '--labels': npy,
      '--model': modelSpec,
      '--from': model,
      '--train': hookPattern,
      '--freeze': hookPattern,
      '--list-parameters': null,
      '--input': namedFile,
      '--optimizer': fc.constantFrom('adam', 'sgd', 'adamw', 'nope'),
      '--lr': number,
      '--momentum': fraction,
      '--weight-decay': number,
      '--betas': fc.constantFrom('0.9,0.999', '1,1', 'a,b', '0.9'),
      '--eps': number,
      '--warmup': number,
      '--cosine': null,
      '--clip': number,
      '--steps': number,
      '--epochs': number,
      '--batch-size': fc.oneof(number, fc.constant('full')),
      '--seed': number,
      '--data-seed': number,
      '--eval-every': number,
      '--label-column': fc.constantFrom('label', 'nope'),
      '--attribute': fc.constantFrom('group', 'g=x.npy', 'label'),
      '--modulus': number,
      '--train-fraction': fraction,
      '--out': fc.constantFrom(
        'm.onnx',
        'out/m.onnx',
        'x.npy',
        'a-file/m.onnx',
        '/dev/null',
        'out',
      ),
      '--checkpoint': fc.constantFrom('ck.onnx', 'out/ck.onnx', 'x.npy'),
      '--checkpoint-every': number,
      '--resume': anyFile,
      '--objective': fc.constantFrom('erm', 'irm:10:5', 'reweight:group', 'jtt:1:2', 'nope'),
      '--smoke': null,
    },
    working: [
      '--task',
      'npy:x.npy',
      '--labels',
      'labels.npy',
      '--model',
      'mlp:hidden=4',
      '--steps',
      '2',
      '--out',
      'm.onnx',
    ],
  },
  inspect: {
    weight: 3,
    positional: model.map((m) => [m]),
    flags: {
      '--data': fc.oneof(npy, table),
      '--input': namedFile,
      '--transform-input': fc.constantFrom('input', 'nope'),
      '--labels': npy,
      '--label-column': fc.constantFrom('label', 'nope'),
      '--attribute': fc.constantFrom('g=labels.npy', 'g=x.npy', 'nope'),
      '--hooks': hookPattern,
      '--metric': fc.constantFrom('loss', 'accuracy', 'logit-diff:0:1', 'nope'),
      '--fourier': number,
      '--circuit': null,
      '--tolerance': fraction,
      '--circuit-examples': number,
      '--integrated-gradients': null,
      '--ig-at': fc.constantFrom('input', 'act1', 'nope'),
      '--ig-baseline': fc.constantFrom('zero', 'mean', 'nope'),
      '--ig-steps': number,
      '--patch-from': npy,
      '--gradient-examples': number,
      '--counterfactual': fc.constantFrom('g:shuffle', 'g:noise', 'nope'),
      '--carrier-fraction': fraction,
      '--top': number,
      '--batch-size': number,
      '--smoke': null,
    },
    working: ['--data', 'x.npy', '--labels', 'labels.npy', '--json', 'result.json'],
  },
  audit: {
    weight: 4,
    positional: model.map((m) => [m]),
    flags: {
      '--data': fc.oneof(npy, table),
      '--input': namedFile,
      '--transform-input': fc.constantFrom('input', 'nope'),
      '--labels': npy,
      '--label-column': fc.constantFrom('label', 'nope'),
      '--attribute': fc.constantFrom('g=labels.npy', 'g=x.npy', 'f0', 'nope'),
      '--counterfactual': fc.constantFrom('g:shuffle', 'g:flip', 'f0:set-to-mean', 'nope'),
      '--shifted': fc.oneof(npy, table),
      '--shifted-labels': npy,
      '--shifted-input': namedFile,
      '--shifted-attribute': fc.constantFrom('g=labels.npy', 'nope'),
      '--hooks': hookPattern,
      '--try-fixes': null,
      '--train-spec': anyFile,
      '--config': anyFile,
      '--fail-on': fc.constantFrom('low', 'medium', 'high', 'nope'),
      '--report': outDir,
      '--batch-size': number,
      '--smoke': null,
    },
    working: [
      '--data',
      'table.csv',
      '--label-column',
      'label',
      '--json',
      'result.json',
      '--fail-on',
      'low',
    ],
  },
  data: {
    weight: 1,
    positional: fc
      .oneof(fc.constantFrom('modular-addition', 'nope'), hostileString)
      .map((task) => [task]),
    flags: {
      '--out': outDir,
      '--data-seed': number,
      '--flat': null,
      '--modulus': fc.constantFrom('5', '7', '1', '0', '99999999999', 'x', '2.5'),
    },
    working: ['--modulus', '5', '--out', 'out'],
  },
  sweep: {
    weight: 1,
    positional: anyFile.map((f) => [f]),
    flags: { '--out': outDir, '--workers': number, '--resume': null, '--smoke': null },
  },
  race: {
    weight: 1,
    positional: fc.constant([]),
    flags: {
      '--task': fc.oneof(task, fc.constantFrom('mnist', 'csv:table-1e999.csv')),
      '--label-column': fc.constantFrom('label', 'f0', 'nope', ''),
      '--attribute': fc.constantFrom('f0', 'g=labels.npy', 'g=x.npy', 'nope', '=x'),
      '--counterfactual': fc.constantFrom('f0:flip', 'f0:channel-swap', 'g:noise', 'x', ':'),
      '--shifted': fc.oneof(table, fc.constantFrom('x.npy,labels.npy', 'x.npy', 'missing.csv')),
      '--contenders': fc.constantFrom('knn', 'knn,logistic', 'nope', '', 'knn,knn', ','),
      '--seeds': fc.constantFrom('1', '2', '0', 'x', '99999999999', '1e3'),
      '--fractions': fc.oneof(fraction, fc.constantFrom('0.5,1', '1,', ',', '0.5,x')),
      '--budget': number,
      '--data-seed': number,
      '--rank-by': fc.constantFrom('in', 'shifted', 'nope'),
      '--report': outDir,
      '--smoke': null,
    },
    working: [
      '--task',
      'csv:table.csv',
      '--label-column',
      'label',
      '--contenders',
      'knn',
      '--json',
      'result.json',
    ],
  },
  demo: {
    weight: 1,
    positional: fc.constant([]),
    flags: {
      '--units': number,
      '--seed': number,
      '--batch-size': number,
      '--report': outDir,
      '--no-fixes': null,
      '--smoke': null,
    },
    forced: fc.tuple(
      fc.constantFrom('--units', '--seed', '--batch-size'),
      fc.constantFrom('2.5', '1e999', 'NaN', 'abc', '', '0x10', '-2.5'),
    ),
  },
};

const OUTPUT_FLAGS = new Set(['--out', '--json', '--report', '--checkpoint']);

/**
 * One command line: a command, its positionals, its working flags (most of the time, so that the
 * command gets past its checks), then some of its flags with random values and perhaps a stray
 * token; a flag given twice takes its last value.
 */
function commandLine(name: string, spec: CommandSpec): fc.Arbitrary<string[]> {
  const flags = { ...COMMON, ...spec.flags };
  const names = Object.keys(flags);
  const flag: fc.Arbitrary<string[]> = fc.constantFrom(...names).chain((option) => {
    const value = flags[option];
    return value === null ? fc.constant([option]) : value.map((text) => [option, text]);
  });
  const stray: fc.Arbitrary<string[]> = fc
    .oneof(fc.constantFrom('--nope', '-x', '--', 'extra', '--out'), hostileString)
    .map((token) => [token]);
  const noStray: fc.Arbitrary<string[]> = fc.constant([]);
  return fc
    .tuple(
      spec.positional,
      fc.array(flag, { maxLength: 4 }),
      fc.oneof({ weight: 4, arbitrary: noStray }, { weight: 1, arbitrary: stray }),
      fc.boolean(),
      fc.integer({ min: 0, max: 9 }),
      spec.forced ?? noStray,
    )
    .map(([positional, chosen, strays, help, dice, forced]) => {
      const options = chosen.filter(([option]) => option !== '--help' || help).flat();
      const working = dice < 7 ? (spec.working ?? []) : [];
      return [name, ...positional, '--threads', '1', ...working, ...options, ...forced, ...strays];
    });
}

const argv: fc.Arbitrary<string[]> = fc.oneof(
  ...Object.entries(COMMANDS).map(([name, spec]) => ({
    weight: spec.weight,
    arbitrary: commandLine(name, spec),
  })),
  {
    weight: 1,
    arbitrary: fc.array(
      fc.oneof(hostileString, fc.constantFrom('help', '--version', '-h', 'run')),
      { maxLength: 3 },
    ),
  },
);

/** Every entry under `dir` (folders, files with the sha-1 of their bytes, links with their target). */
function snapshot(dir: string): Map<string, string> {
  const entries = new Map<string, string>();
  const walk = (folder: string) => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      const stat = lstatSync(path);
      const key = relative(dir, path);
      if (stat.isDirectory()) {
        entries.set(key, 'folder');
        walk(path);
      } else if (stat.isSymbolicLink()) entries.set(key, `link ${readlinkSync(path)}`);
      else entries.set(key, createHash('sha1').update(readFileSync(path)).digest('hex'));
    }
  };
  walk(dir);
  return entries;
}

/** The output paths a command line names, by flag: the last value given wins (commander's rule). */
function outputFlags(args: readonly string[]): Map<string, string> {
  const outputs = new Map<string, string>();
  args.forEach((arg, i) => {
    if (OUTPUT_FLAGS.has(arg) && args[i + 1] !== undefined) outputs.set(arg, args[i + 1]);
  });
  return outputs;
}

/** The paths the command line names as outputs, relative to the case folder ('-' is standard output). */
function outputsOf(args: readonly string[], dir: string): string[] {
  const flags = outputFlags(args);
  if (args[0] === 'demo' && !flags.has('--report')) flags.set('--report', 'teardown-report'); // its default
  if (flags.get('--json') === '-') flags.delete('--json'); // standard output; '-' is a name elsewhere
  const paths = [...flags.values()];
  return paths.map((path) => relative(dir, resolve(dir, path)));
}

const STACK_FRAME = /^\s+at .*:\d+:\d+\)?$/m;
const TEMPORARY = /(^|\/)\.teardown-(tmp|staging)-/;

interface CaseResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Paths added, changed or removed in the case folder. */
  changed: string[];
  after: Map<string, string>;
  dir: string;
}

type Run = (
  args: string[],
  dir: string,
) => Promise<{ code: number; stdout: string; stderr: string }>;

/** How a case folder is set up and its command run: in-process by default. */
interface CaseFolder {
  /** After the files are copied in, before the folder is listed (mounts, owners, an earlier run). */
  prepare?: (dir: string) => Promise<void> | void;
  /** After the folder is listed again, before it is removed (unmounting). */
  release?: (dir: string) => void;
  run?: Run;
}

/** `teardown ...args` in-process, in `dir`, with its text caught. */
const runInProcess: Run = async (args, dir) => {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: { write: (text: string) => void (stdout += text) },
    stderr: { write: (text: string) => void (stderr += text) },
  };
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    return { code: await main(args, io), stdout, stderr };
  } finally {
    process.chdir(cwd);
    allowNonFinite(false); // --allow-non-finite sets a process-wide switch
  }
};

/** Runs `teardown ...args` in a fresh folder holding the corpus and model.onnx. */
async function runInCaseFolder(args: string[], folder: CaseFolder = {}): Promise<CaseResult> {
  return inFreshDir(async (dir) => {
    for (const name of HOSTILE_FILES) copyFileSync(join(HOSTILE_DIR, name), join(dir, name));
    copyFileSync(join(fixtureDir('mlp'), 'model.onnx'), join(dir, 'model.onnx'));
    try {
      await folder.prepare?.(dir);
      const before = snapshot(dir);
      const { code, stdout, stderr } = await (folder.run ?? runInProcess)(args, dir);
      const after = snapshot(dir);
      const keys = new Set([...before.keys(), ...after.keys()]);
      const changed = [...keys].filter((key) => before.get(key) !== after.get(key));
      return { code, stdout, stderr, changed, after, dir };
    } finally {
      folder.release?.(dir);
    }
  });
}

/** The properties every command line keeps (the file's opening comment). */
async function runCase(args: string[], folder?: CaseFolder): Promise<CaseResult> {
  const result = await runInCaseFolder(args, folder);
  const { code, stdout, stderr, changed, after, dir } = result;
  const shown = `teardown ${args.map((arg) => JSON.stringify(arg)).join(' ')}\nexit ${code}\nstderr: ${stderr.slice(0, 1500)}`;
  assert.ok([0, 2, 3].includes(code), shown);
  assert.doesNotMatch(stdout + stderr, STACK_FRAME, `a stack trace:\n${shown}`);
  const temporaries = [...after.keys()].filter((key) => TEMPORARY.test(key));
  assert.deepEqual(temporaries, [], `temporaries left behind:\n${shown}`);
  if (code === 2) assert.deepEqual(changed, [], `a refusal changed the folder:\n${shown}`);
  const outputs = outputsOf(args, dir);
  // An output, anything under it, or a folder made to hold it (a missing parent).
  const allowed = (key: string) =>
    outputs.some(
      (out) =>
        out === '' ||
        key === out ||
        key.startsWith(`${out}/`) ||
        (out.startsWith(`${key}/`) && after.get(key) === 'folder'),
    );
  const outside = changed.filter((key) => !allowed(key));
  assert.deepEqual(outside, [], `written outside ${JSON.stringify(outputs)}:\n${shown}`);
  return result;
}

describe('fuzz: the command line through main(argv, io)', { timeout: 600_000 }, () => {
  const smoke = process.env.TEARDOWN_SMOKE;
  before(() => void (process.env.TEARDOWN_SMOKE = '1'));
  after(() => {
    if (smoke === undefined) delete process.env.TEARDOWN_SMOKE;
    else process.env.TEARDOWN_SMOKE = smoke;
  });

  it(`every command with random flags, values and hostile files (${FUZZ_RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(argv, async (args) => void (await runCase(args))),
      fuzzParameters(),
    );
  });
});

// Working command lines whose outputs the two fuzz targets below place.
const RUN = ['run', 'model.onnx', '--threads', '1', '--input', 'input=x.npy', '--out'];
const GRAD_OUT = [
  'grad',
  'model.onnx',
  '--threads',
  '1',
  '--input',
  'input=x.npy',
  '--labels',
  'labels.npy',
  '--out',
];
const DATA = ['data', 'modular-addition', '--modulus', '5', '--out'];
const HOOKS = ['hooks', 'model.onnx', '--threads', '1', '--json'];
const TRAIN = [
  'train',
  '--task',
  'npy:x.npy',
  '--labels',
  'labels.npy',
  '--model',
  'mlp:hidden=4',
  '--steps',
  '2',
  '--threads',
  '1',
  '--out',
];
const AUDIT = [
  'audit',
  'model.onnx',
  '--data',
  'table.csv',
  '--label-column',
  'label',
  '--threads',
  '1',
  '--report',
];

/** A working command line with its outputs among `folders` and `files`, perhaps a --json too. */
function placedOutputs(
  folders: readonly string[],
  files: readonly string[],
): fc.Arbitrary<string[]> {
  const folder = fc.constantFrom(...folders);
  const file = fc.constantFrom(...files);
  const line = fc.oneof(
    folder.map((out) => [...RUN, out]),
    folder.map((out) => [...GRAD_OUT, out]),
    folder.map((out) => [...DATA, out]),
    file.map((out) => [...HOOKS, out]),
    file.map((out) => [...TRAIN, out.replace(/\.json$/, '.onnx')]),
    folder.map((out) => [...AUDIT, out]),
  );
  const json = fc.option(
    file.map((out) => ['--json', out]),
    { nil: undefined },
  );
  return fc.tuple(line, json).map(([args, extra]) => [...args, ...(extra ?? []), '--quiet']);
}

/** Whether this machine lets us mount a tmpfs (root in a container that allows it); why not. */
function mountRefusal(): string | undefined {
  const probe = mkdtempSync(join(tmpdir(), 'teardown-mount-probe-'));
  try {
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], {
      encoding: 'utf8',
    });
    if (mounted.status !== 0)
      return (mounted.stderr || mounted.error?.message || 'mount failed').trim();
    spawnSync('umount', [probe]);
    return undefined;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

describe('fuzz: outputs on other file systems (tmpfs mount points)', { timeout: 300_000 }, () => {
  /** 'volume' a writable tmpfs (a Docker volume), holding an earlier run's result or not; 'ro' a read-only one. */
  const mounts = (seeded: boolean): CaseFolder => ({
    prepare: async (dir) => {
      for (const [name, options] of [
        ['volume', 'size=16m'],
        ['ro', 'ro,size=1m'],
      ]) {
        mkdirSync(join(dir, name));
        const mounted = spawnSync(
          'mount',
          ['-t', 'tmpfs', '-o', options, 'tmpfs', join(dir, name)],
          { encoding: 'utf8' },
        );
        assert.equal(mounted.status, 0, mounted.stderr);
      }
      // An earlier result unlike any case's (it caches a hook), so a rerun changes its files.
      if (seeded)
        assert.equal(
          (await runInProcess([...RUN, 'volume', '--cache', 'act1', '--quiet'], dir)).code,
          0,
        );
    },
    release: (dir) => {
      for (const name of ['volume', 'ro']) spawnSync('umount', [join(dir, name)]);
    },
  });

  it('outputs at, inside and under mount points: whole or absent, no EXDEV, nothing left behind', async (t) => {
    const refusal = mountRefusal();
    if (refusal) return t.skip(`cannot mount a tmpfs on this machine (${refusal})`);
    const folders = ['volume', 'volume/out', 'volume/deep/out', 'ro', 'ro/out'];
    const files = ['volume/r.json', 'volume/deep/r.json', 'ro/r.json', 'volume'];
    const property = fc.asyncProperty(
      placedOutputs(folders, files),
      fc.boolean(),
      async (args, seeded) => {
        const { code, changed } = await runCase(args, mounts(seeded));
        const outputs = [...outputFlags(args).values()];
        const intoReadOnly = outputs.some((out) => out === 'ro' || out.startsWith('ro/'));
        if (intoReadOnly)
          assert.equal(code, 2, `${args.join(' ')}: a read-only file system is refused`);
        if (code === 0) assert.ok(changed.length > 0, `${args.join(' ')}: wrote nothing`);
      },
    );
    await fc.assert(property, fuzzParameters(0.2));
  });
});

/** Whether `runuser -u nobody` can run node here (root, and the checkout readable by others); why not. */
function otherUserRefusal(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: cannot run a command as another user';
  const probe = spawnSync(
    'runuser',
    [
      '-u',
      'nobody',
      '--',
      process.execPath,
      '-e',
      `require('fs').accessSync(${JSON.stringify(BIN)})`,
    ],
    { encoding: 'utf8' },
  );
  if (probe.status !== 0)
    return (probe.stderr || probe.error?.message || 'runuser failed').trim().split('\n')[0];
  return undefined;
}

const BIN = fileURLToPath(new URL('../../bin/teardown.js', import.meta.url));

describe(
  'fuzz: outputs where another user cannot write (runuser -u nobody)',
  { timeout: 300_000 },
  () => {
    /** The case folder readable by all and owned by root; 'locked' root's, 'mine' nobody's. */
    const owners: CaseFolder = {
      prepare: (dir) => {
        chmodSync(dir, 0o755);
        mkdirSync(join(dir, 'locked'), { mode: 0o755 });
        mkdirSync(join(dir, 'mine'));
        const nobody = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim();
        chownSync(join(dir, 'mine'), Number(nobody), Number(nobody));
      },
      run: async (args, dir) => {
        const run = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, BIN, ...args], {
          cwd: dir,
          encoding: 'utf8',
        });
        return { code: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
      },
    };

    it('outputs in folders nobody may or may not write: exit 0 or 2, whole or absent', async (t) => {
      const refusal = otherUserRefusal();
      if (refusal) return t.skip(`cannot run as another user on this machine (${refusal})`);
      const folders = ['locked/out', 'mine/out', 'out', 'mine/deep/out'];
      const files = ['locked/r.json', 'mine/r.json', 'r.json', 'mine/deep/r.json'];
      const property = fc.asyncProperty(placedOutputs(folders, files), async (args) => {
        const { code } = await runCase(args, owners);
        const mine = [...outputFlags(args).values()].every((out) => out.startsWith('mine/'));
        assert.equal(code, mine ? 0 : 2, `${args.join(' ')}: exit ${code}`);
      });
      await fc.assert(property, fuzzParameters(0.05));
    });
  },
);

describe('regressions found by fuzzing the command line', () => {
  const GRAD = [
    'grad',
    'model.onnx',
    '--threads',
    '1',
    '--input',
    'input=x.npy',
    '--labels',
    'labels.npy',
  ];

  it('grad --out out --json out: refused before the work (was exit 2 with out/ written)', async () => {
    const { code, stderr } = await runCase([...GRAD, '--out', 'out', '--json', 'out']);
    assert.equal(code, 2);
    assert.match(stderr, /--json 'out' and --out 'out' are the same path/);
  });

  it('run --json inside its --out folder: refused (was written into the result folder)', async () => {
    const args = [
      'run',
      'model.onnx',
      '--threads',
      '1',
      '--input',
      'input=x.npy',
      '--out',
      'out',
      '--json',
      'out/r.json',
    ];
    const { code, stderr } = await runCase(args);
    assert.equal(code, 2);
    assert.match(stderr, /--json 'out\/r.json' lies inside the --out folder 'out'/);
  });

  it('train --checkpoint at its own --out: refused (the model overwrote the checkpoint)', async () => {
    const args = [
      'train',
      '--task',
      'npy:x.npy',
      '--labels',
      'labels.npy',
      '--model',
      'mlp:hidden=4',
      '--steps',
      '2',
      '--threads',
      '1',
    ];
    const { code, stderr } = await runCase([
      ...args,
      '--out',
      'm.onnx',
      '--checkpoint',
      './m.onnx',
    ]);
    assert.equal(code, 2);
    assert.match(stderr, /--out 'm.onnx' and --checkpoint '.\/m.onnx' are the same path/);
  });

  it('numbers in flags are decimal: --threads 0x10 and demo --units 0x10 refused (were read as 16)', async () => {
    // Found when demo --units 0x10 ran the whole demo with 16 units: Number() reads hexadecimal.
    for (const args of [
      ['hooks', 'model.onnx', '--threads', '0x10'],
      ['demo', '--units', '0x10'],
      ['run', 'model.onnx', '--batch-size', '0b11'],
    ]) {
      const { code, stderr } = await runCase(args);
      assert.equal(code, 2, args.join(' '));
      assert.match(stderr, /expects a positive integer, got '0(x10|b11)'/);
    }
    const { code } = await runCase(['hooks', 'model.onnx', '--threads', '1e0', '--quiet']);
    assert.equal(code, 0, 'decimal exponents are numbers');
  });

  it('grad with --out and --json apart still writes both', async () => {
    const { code, changed } = await runCase([
      ...GRAD,
      '--out',
      'out',
      '--json',
      'r.json',
      '--quiet',
    ]);
    assert.equal(code, 0);
    assert.ok(changed.includes('r.json') && changed.includes('out/index.json'), changed.join(', '));
  });
});
