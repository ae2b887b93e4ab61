/**
 * Benchmarks, side by side with the named peer in one run; one JSON line per case on stdout.
 *
 *   npm run bench -- patch [--threads N] [--reps N]   resid-stream patch sweep on the gpt fixture (batch 32):
 *                                                     teardown's stacked sweep vs a PyTorch forward-hook loop
 *   npm run bench -- cache [--threads N] [--reps N]   overhead of caching every module hook / every raw value
 *                                                     vs a plain run, on models where a plain run takes ≥ 10 ms
 *   npm run bench -- train [--reps N] [--case C]      ms per training step vs PyTorch, alternating blocks (MLP/SGD, fixture CNN/AdamW,
 *                                                     grokking transformer/AdamW full batch) at 1 and 2 threads
 *   npm run bench -- inspect [--threads N]            teardown inspect of the MNIST MLP over 10k and 100k examples: time, peak memory
 *   npm run bench -- scale [--threads N]              GPT-2-small shape (exported at bench time): run-with-cache of every module hook,
 *                                                     a resid_pre patch sweep (a fraction of its positions), inspect of three hooks:
 *                                                     time and peak RSS vs PyTorch forward hooks on the same weights (issue 11)
 *   npm run bench -- train-gpt2 [--threads N]         GPT-2-small shape, batch 8 × 128: ms per AdamW training step vs PyTorch (bench/train-gpt2.ts)
 *   npm run bench -- sweep                            local sweep throughput (trials/min) at 1 and 2 workers, its cost per trial
 *                                                     against a bare loop spawning the same commands (bench/sweep.ts), and the
 *                                                     queue's overhead per trial through Redis vs the local pool (bench/sweep-queue.ts;
 *                                                     starts redis-server on a free loopback port, skipped without it)
 *
 * Shared helpers (timing, the PyTorch peer) are in bench/peer.ts; the scale case is bench/scale.ts.
 * Figures and the commands that produced them go into bench/RESULTS.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { encodeNpy, readNpy } from '../src/data/npy.ts';
import { loadDigits } from '../src/data/mnist.ts';
import { tensorFromProto } from '../src/onnx/tensor-proto.ts';
import { patchSweep } from '../src/inspect/patch-sweep.ts';
import { Model } from '../src/runtime/model.ts';
import { runWithCache } from '../src/runtime/run.ts';
import { seededRandom } from '../src/random.ts';
import { repeatRows, tensor, type Tensor } from '../src/tensor.ts';
import { buildModel } from '../src/train/builders.ts';
import { parseModelSpec } from '../src/train/model-spec.ts';
import type { OptimizerSpec } from '../src/train/optimizers.ts';
import { Stepper } from '../src/train/stepper.ts';
import { MAX_STEPS_PER_RUN } from '../src/train/trainer.ts';
import { fixtureCnn } from './fixture-cnn.ts';
import { lstmTrainCase } from './train-lstm.ts';
import { benchTrainGpt2 } from './train-gpt2.ts';
import {
  alternate,
  ensureTorch,
  median,
  peerFields,
  randomTokens,
  round,
  TorchPeer,
} from './peer.ts';
import { benchScale } from './scale.ts';
import { benchSweep } from './sweep.ts';

const fixture = (name: string) =>
  fileURLToPath(new URL(`../test/fixtures/${name}/`, import.meta.url));
const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    threads: { type: 'string', default: '1' },
    reps: { type: 'string', default: '15' },
    case: { type: 'string' },
  },
});
const threads = Number(flags.threads);
const reps = Number(flags.reps);

/** Every parameter by its PyTorch name: initializers, plus the tied copies the exporter made with Identity nodes. */
function parametersByName(model: Model): Map<string, Tensor> {
  const params = new Map(model.proto.graph.initializer.map((t) => [t.name, tensorFromProto(t)]));
  for (const node of model.proto.graph.node) {
    if (node.opType === 'Identity' && params.has(node.input[0]))
      params.set(node.output[0], params.get(node.input[0])!);
  }
  return params;
}

async function benchPatch(): Promise<void> {
  ensureTorch();
  const model = Model.load(`${fixture('gpt')}model.onnx`, { threads });
  const dir = mkdtempSync(join(tmpdir(), 'teardown-bench-'));
  for (const [name, value] of parametersByName(model))
    writeFileSync(join(dir, `${name}.npy`), encodeNpy(value));
  const clean = randomTokens(1, [32, 12], 48);
  const corrupted = randomTokens(2, [32, 12], 48);
  writeFileSync(join(dir, 'clean.npy'), encodeNpy(clean));
  writeFileSync(join(dir, 'corrupted.npy'), encodeNpy(corrupted));
  const token = 7;
  const metric = (logits: Tensor) => {
    const [batch, seq, vocab] = logits.dims;
    let sum = 0;
    for (let b = 0; b < batch; b++) sum += Number(logits.data[(b * seq + seq - 1) * vocab + token]);
    return sum / batch;
  };
  // resid_pre of block i: the value its first LayerNorm reads.
  const residPre = [0, 1].map(
    (block) =>
      model.graph.nodes[model.graph.producer.get(model.hooks.resolve(`blocks.${block}.ln1`).value)!]
        .input[0],
  );
  // The metric reads the last position only, so teardown computes only what that position needs.
  const sweep = () =>
    patchSweep(model, { input: clean }, { input: corrupted }, residPre, 'all', metric, {
      lastPosition: true,
    });
  const result = await sweep(); // also the warm-up
  const peer = await TorchPeer.start(
    './torch_patch_sweep.py',
    [
      '--weights',
      dir,
      '--clean',
      join(dir, 'clean.npy'),
      '--corrupted',
      join(dir, 'corrupted.npy'),
      '--token',
      String(token),
    ],
    threads,
  );
  const perBlock = 5;
  const blocks = Math.max(3, Math.ceil(reps / perBlock));
  const timed = await alternate(
    blocks,
    { call: sweep, calls: perBlock, unitsPerCall: 1 },
    peer,
    perBlock,
  );
  peer.close();
  const torchEffects = peer.ready.effects as number[][];
  const plain = await runWithCache(model, { input: clean }, []);
  const logitsError = Math.max(
    ...Array.from(readNpy(join(dir, 'torch_logits.npy')).data as Float32Array, (v, i) =>
      Math.abs(v - Number(plain.outputs.output.data[i])),
    ),
  );
  const effectError = Math.max(
    ...result.effects.flatMap((row, h) =>
      row.map((value, p) => Math.abs(value - torchEffects[h][p])),
    ),
  );
  console.log(
    JSON.stringify({
      case: 'patch',
      model: 'gpt fixture (2 blocks, d=32, 12 positions)',
      batch: 32,
      hooks: residPre,
      positions: 12,
      threads,
      teardown_ms: round(median(timed.ours)),
      torch_ms: round(median(timed.theirs)),
      speedup: round(median(timed.theirs) / median(timed.ours), 2),
      ...peerFields(threads),
      block_speedups: [
        round(Math.min(...timed.blockRatios), 2),
        round(Math.max(...timed.blockRatios), 2),
      ],
      blocks,
      sweeps_per_block: perBlock,
      ort_runs: result.runs,
      torch_forwards: residPre.length * 12,
      teardown_cpu_per_wall: round(timed.cpu.ours, 2),
      torch_cpu_per_wall: round(timed.cpu.theirs, 2),
      torch: peer.ready.torch,
      max_abs_effect_difference: effectError,
      max_abs_logit_difference: logitsError,
    }),
  );
  await model.release();
}

async function benchCache(): Promise<void> {
  // An activation-heavy conv net and a compute-heavy MLP, each at a batch where a plain run takes ≥ 10 ms.
  await cacheOverhead(
    'cnn fixture',
    `${fixture('cnn')}model.onnx`,
    repeatRows(readNpy(`${fixture('cnn')}input.npy`), 128),
  ); // [1024, 1, 28, 28]
  await cacheOverhead(
    'examples/mnist-mlp.onnx',
    fileURLToPath(new URL('../examples/mnist-mlp.onnx', import.meta.url)),
    repeatRows(loadDigits('test').images, 4),
  ); // [8016, 784]
}

async function cacheOverhead(label: string, path: string, input: Tensor): Promise<void> {
  const model = Model.load(path, { threads });
  const modules = model.hooks.hooks
    .filter((hook) => hook.kind === 'module')
    .map((hook) => hook.name);
  const values = model.hooks.hooks.filter((hook) => hook.kind === 'value').map((hook) => hook.name);
  const variants: [string, string[]][] = [
    ['plain', []],
    ['modules', modules],
    ['values', values],
  ];
  const times = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  for (const [, patterns] of variants) await runWithCache(model, { input }, patterns); // warm-up
  for (let rep = 0; rep < reps; rep++) {
    for (const [name, patterns] of variants) {
      // interleaved, so drift hits every variant alike
      const start = performance.now();
      await runWithCache(model, { input }, patterns);
      times.get(name)!.push(performance.now() - start);
    }
  }
  const plain = median(times.get('plain')!);
  const bytes = (patterns: string[]) =>
    runWithCache(model, { input }, patterns).then(({ cache }) =>
      [...cache.values()].reduce((sum, t) => sum + t.data.byteLength, 0),
    );
  console.log(
    JSON.stringify({
      case: 'cache',
      model: label,
      batch: input.dims[0],
      threads,
      reps,
      cached_mb: {
        modules: round((await bytes(modules)) / 1e6, 1),
        values: round((await bytes(values)) / 1e6, 1),
      },
      plain_ms: round(plain),
      all_modules_ms: round(median(times.get('modules')!)),
      all_values_ms: round(median(times.get('values')!)),
      module_hooks: modules.length,
      raw_values: values.length,
      all_modules_ratio: round(median(times.get('modules')!) / plain, 2),
      all_values_ratio: round(median(times.get('values')!) / plain, 2),
      ...peerFields(threads),
    }),
  );
  await model.release();
}

/**
 * ms per training step, teardown vs PyTorch, on the same models, batch shapes and optimizers, at 1
 * and 2 threads. The two sides alternate in blocks of about the same number of steps (PyTorch runs
 * as a server waiting for each block), so drift on this shared machine reaches both alike; a pause
 * before each block lets the other side's idle threads stop spinning. teardown runs as its trainer
 * does: MAX_STEPS_PER_RUN steps per onnxruntime run.
 */
async function benchTrain(): Promise<void> {
  ensureTorch();
  const random = seededRandom(0);
  const floats = (dims: number[]) =>
    tensor('float32', dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, random));
  const classes = (n: number, count: number) =>
    tensor(
      'int64',
      [n],
      Array.from({ length: n }, () => Math.floor(random() * count)),
    );
  const tokens = tensor(
    'int64',
    [3831, 3],
    Array.from({ length: 3831 * 3 }, (_, k) => (k % 3 === 2 ? 113 : Math.floor(random() * 113))),
  );
  const sgd: OptimizerSpec = {
    kind: 'sgd',
    momentum: 0.9,
    weightDecay: 0,
    betas: [0.9, 0.999],
    eps: 1e-8,
  };
  const adamw: OptimizerSpec = {
    kind: 'adamw',
    momentum: 0,
    weightDecay: 0.01,
    betas: [0.9, 0.999],
    eps: 1e-8,
  };
  // Steps per block: about half a second of work.
  const cases = [
    {
      name: 'mlp',
      block: 192,
      proto: () =>
        buildModel(parseModelSpec('mlp:hidden=256-256'), { kind: 'features', features: 784 }, 10, 0)
          .proto,
      input: floats([128, 784]),
      target: classes(128, 10),
      optimizer: sgd,
      lr: 0.01,
      positions: 'all' as const,
    },
    {
      name: 'cnn',
      block: 64,
      proto: () => fixtureCnn(0),
      input: floats([64, 1, 28, 28]),
      target: classes(64, 10),
      optimizer: adamw,
      lr: 1e-3,
      positions: 'all' as const,
    },
    {
      name: 'transformer',
      block: 4,
      proto: () =>
        buildModel(
          parseModelSpec(
            'transformer:layers=1,heads=4,d_model=128,d_mlp=512,act=relu,ln=false,init=nanda',
          ),
          { kind: 'tokens', length: 3, vocab: 114 },
          113,
          0,
        ).proto,
      input: tokens,
      target: classes(3831, 113),
      optimizer: { ...adamw, weightDecay: 1, betas: [0.9, 0.98] as [number, number] },
      lr: 1e-3,
      positions: 'last' as const,
    },
    lstmTrainCase(floats, classes, adamw),
  ];
  const blocks = Math.max(3, Math.round(reps / 3));
  for (const threadCount of [1, 2]) {
    for (const benchCase of cases.filter((c) => !flags.case || c.name === flags.case)) {
      const model = Model.fromProto(benchCase.proto(), benchCase.name, { threads: threadCount });
      // As the trainer builds it: a model scored on its last position computes only that position after the last attention.
      const stepper = await Stepper.create(
        model,
        { input: benchCase.input },
        benchCase.target,
        {
          kind: 'cross-entropy',
          positions: benchCase.positions,
          sliceEarly: benchCase.positions === 'last',
        },
        benchCase.optimizer,
        undefined,
        { threads: threadCount },
      );
      const state = stepper.initialState(model);
      const stepsPerRun = Math.min(MAX_STEPS_PER_RUN, benchCase.block);
      let t = 0;
      const run = () =>
        stepper.steps(
          state,
          Array.from({ length: stepsPerRun }, () => ({
            feeds: { input: benchCase.input },
            target: benchCase.target,
            lr: benchCase.lr,
            t: ++t,
          })),
        );
      const peer = await TorchPeer.start(
        './torch_train.py',
        ['--case', benchCase.name],
        threadCount,
      );
      await run(); // warm-up
      const timed = await alternate(
        blocks,
        { call: run, calls: Math.ceil(benchCase.block / stepsPerRun), unitsPerCall: stepsPerRun },
        peer,
        benchCase.block,
      );
      peer.close();
      await stepper.release();
      console.log(
        JSON.stringify({
          case: `train-${benchCase.name}`,
          threads: threadCount,
          teardown_ms_per_step: round(median(timed.ours)),
          torch_ms_per_step: round(median(timed.theirs)),
          ratio: round(median(timed.theirs) / median(timed.ours), 2),
          ...peerFields(threadCount),
          block_ratios: [
            round(Math.min(...timed.blockRatios), 2),
            round(Math.max(...timed.blockRatios), 2),
          ],
          steps_per_run: stepsPerRun,
          blocks,
          steps_per_block: benchCase.block,
          teardown_cpu_per_wall: round(timed.cpu.ours, 2),
          torch_cpu_per_wall: round(timed.cpu.theirs, 2),
          torch: peer.ready.torch,
        }),
      );
    }
  }
}

/** teardown inspect of the MNIST MLP over 10,000 and 100,000 examples, each in its own process for its peak memory. */
async function benchInspect(): Promise<void> {
  for (const examples of [10_000, 100_000]) {
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./inspect-child.ts', import.meta.url)),
        String(examples),
        String(threads),
      ],
      { encoding: 'utf8' },
    );
    if (child.status !== 0)
      throw new Error(`bench: inspect of ${examples} examples failed:\n${child.stderr}`);
    console.log(
      JSON.stringify({
        case: 'inspect',
        model: 'examples/mnist-mlp.onnx',
        ...JSON.parse(child.stdout),
        ...peerFields(threads),
      }),
    );
  }
}

const cases: Record<string, () => Promise<void>> = {
  patch: benchPatch,
  cache: benchCache,
  train: benchTrain,
  inspect: benchInspect,
  scale: () => benchScale(threads, flags.case),
  'train-gpt2': () => benchTrainGpt2(threads),
  sweep: benchSweep,
};
// scale and train-gpt2 run only when named: they take ~10 minutes each.
for (const name of positionals.length
  ? positionals
  : Object.keys(cases).filter((name) => name !== 'scale' && name !== 'train-gpt2')) {
  if (!cases[name])
    throw new Error(`bench: unknown case '${name}' (cases: ${Object.keys(cases).join(', ')})`);
  await cases[name]();
}
