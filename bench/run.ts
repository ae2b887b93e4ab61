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
 *
 * Figures and the commands that produced them go into bench/RESULTS.md.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
import { relativeError, repeatRows, tensor, type Tensor } from '../src/tensor.ts';
import { buildModel } from '../src/train/builders.ts';
import { parseModelSpec } from '../src/train/model-spec.ts';
import type { OptimizerSpec } from '../src/train/optimizers.ts';
import { Stepper } from '../src/train/stepper.ts';
import { MAX_STEPS_PER_RUN } from '../src/train/trainer.ts';
import { fixtureCnn } from './fixture-cnn.ts';

const fixture = (name: string) => fileURLToPath(new URL(`../test/fixtures/${name}/`, import.meta.url));
const { values: flags, positionals } = parseArgs({ allowPositionals: true, options: { threads: { type: 'string', default: '1' }, reps: { type: 'string', default: '15' }, case: { type: 'string' } } });
const threads = Number(flags.threads);
const reps = Number(flags.reps);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const round = (value: number, digits = 3) => Number(value.toFixed(digits));

/** Wall times of `reps` runs, and the process's CPU time ÷ wall time over them (≈ the cores it kept busy). */
async function timeIt(reps: number, body: () => Promise<unknown>): Promise<{ times: number[]; cpuPerWall: number }> {
  const times: number[] = [];
  const cpuStart = process.cpuUsage();
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    await body();
    times.push(performance.now() - start);
  }
  const cpu = process.cpuUsage(cpuStart);
  return { times, cpuPerWall: (cpu.user + cpu.system) / 1000 / times.reduce((a, b) => a + b, 0) };
}

function randomTokens(seed: number, dims: number[], vocab: number): Tensor {
  const random = seededRandom(seed);
  return tensor('int64', dims, Array.from({ length: dims[0] * dims[1] }, () => Math.floor(random() * vocab)));
}

/** Every parameter by its PyTorch name: initializers, plus the tied copies the exporter made with Identity nodes. */
function parametersByName(model: Model): Map<string, Tensor> {
  const params = new Map(model.proto.graph.initializer.map((t) => [t.name, tensorFromProto(t)]));
  for (const node of model.proto.graph.node) {
    if (node.opType === 'Identity' && params.has(node.input[0])) params.set(node.output[0], params.get(node.input[0])!);
  }
  return params;
}

/**
 * Debian's python3-torch (BLAS_INFO=generic) calls whatever libblas.so.3 the alternatives system
 * points to: the reference netlib BLAS unless OpenBLAS is installed, which made its matrix
 * products 10–30× slower here. The peer gets OpenBLAS, so the comparison is with a fast PyTorch.
 *
 * The PyTorch side's environment at a given thread count. torch.set_num_threads sizes PyTorch's own
 * OpenMP pool, but OpenBLAS (called through libblas.so.3) runs its own pthreads, one per core unless
 * told otherwise: without OPENBLAS_NUM_THREADS a "1-thread" PyTorch ran its matrix products on both
 * cores (CPU time / wall time 1.99 in its MLP step). Each side reports CPU time ÷ wall time so the
 * comparison shows it used the cores it was given. OPENBLAS_CORETYPE is the fastest correct kernel
 * found by peerBlas.
 */
function torchEnv(threadCount: number): NodeJS.ProcessEnv {
  return blasEnv(threadCount, peerBlas(threadCount).coretype);
}

function blasEnv(threadCount: number, coretype: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threadCount), OMP_NUM_THREADS: String(threadCount) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  if (coretype !== 'auto') env.OPENBLAS_CORETYPE = coretype;
  return env;
}

/** OpenBLAS core types tried for the peer: 'auto' is OpenBLAS's own detection (OPENBLAS_CORETYPE unset). */
const CORE_TYPES = ['auto', 'COOPERLAKE', 'SAPPHIRERAPIDS', 'SKYLAKEX', 'HASWELL'];

interface PeerBlas {
  /** The chosen OPENBLAS_CORETYPE ('auto': unset). */
  coretype: string;
  /** PyTorch's 512³ float32 matmul with it, GFLOP/s at the thread count. */
  gflops: number;
  /** Every candidate's GFLOP/s, or why it was refused. */
  candidates: Record<string, number | string>;
}

const peerBlasByThreads = new Map<number, PeerBlas>();

/**
 * The fastest OpenBLAS kernel that computes correct products, for the PyTorch peer at a thread
 * count. Debian's OpenBLAS 0.3.21 may autodetect a slow kernel on recent CPUs (33 GFLOP/s on one
 * thread on an Intel machine, 204 with COOPERLAKE), which made ratios look up to 3× better than
 * they are. Each candidate runs bench/blas_probe.py in a fresh process (OpenBLAS reads the
 * variable once, when loaded): a 512³ matmul timed, and checked against a float64 product
 * (max relative error < 1e-4; a kernel the CPU cannot run crashes its process and is refused);
 * GFLOP/s from the fastest of 30 products, so a busy neighbour does not pick the kernel.
 * Probed once per thread count per bench run.
 */
function peerBlas(threadCount: number): PeerBlas {
  const cached = peerBlasByThreads.get(threadCount);
  if (cached) return cached;
  ensureTorch();
  const candidates: Record<string, number | string> = {};
  let best: PeerBlas | undefined;
  for (const coretype of CORE_TYPES) {
    const probe = spawnSync('/usr/bin/python3', [fileURLToPath(new URL('./blas_probe.py', import.meta.url))], { env: blasEnv(threadCount, coretype), encoding: 'utf8' });
    if (probe.status !== 0) { candidates[coretype] = `failed (exit ${probe.status ?? probe.signal})`; continue; }
    const { gflops, max_rel_error: error } = JSON.parse(probe.stdout) as { gflops: number; max_rel_error: number };
    if (!(error < 1e-4)) { candidates[coretype] = `wrong product (max relative error ${error})`; continue; }
    candidates[coretype] = round(gflops, 1);
    if (!best || gflops > best.gflops) best = { coretype, gflops: round(gflops, 1), candidates };
  }
  if (!best) throw new Error(`bench: no OpenBLAS core type gave PyTorch a correct 512³ product at ${threadCount} thread(s): ${JSON.stringify(candidates)}`);
  console.error(`bench: PyTorch peer at ${threadCount} thread(s): OPENBLAS_CORETYPE=${best.coretype} (512³ matmul GFLOP/s by core type: ${JSON.stringify(candidates)})`);
  peerBlasByThreads.set(threadCount, best);
  return best;
}

/** The peer's kernel, printed next to every ratio so that a crippled peer is visible. */
function peerFields(threadCount: number): { peer_matmul_gflops: number; peer_coretype: string } {
  const blas = peerBlas(threadCount);
  return { peer_matmul_gflops: blas.gflops, peer_coretype: blas.coretype };
}

function ensureTorch(): void {
  const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
  const blas = spawnSync('update-alternatives', ['--query', 'libblas.so.3-x86_64-linux-gnu'], { encoding: 'utf8' }).stdout ?? '';
  const hasOpenBlas = /Value: .*openblas/.test(blas);
  if (hasTorch && hasOpenBlas) return;
  console.error('bench: installing Debian python3-torch and libopenblas0-pthread (the PyTorch side of the comparison)...');
  const install = spawnSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch libopenblas0-pthread'], { stdio: 'inherit' });
  if (install.status !== 0) throw new Error('bench: could not install python3-torch and libopenblas0-pthread with apt-get (run as root, or install them yourself).');
}

async function benchPatch(): Promise<void> {
  ensureTorch();
  const model = Model.load(`${fixture('gpt')}model.onnx`, { threads });
  const dir = mkdtempSync(join(tmpdir(), 'teardown-bench-'));
  for (const [name, value] of parametersByName(model)) writeFileSync(join(dir, `${name}.npy`), encodeNpy(value));
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
  const residPre = [0, 1].map((block) => model.graph.nodes[model.graph.producer.get(model.hooks.resolve(`blocks.${block}.ln1`).value)!].input[0]);
  // The metric reads the last position only, so teardown computes only what that position needs.
  const sweep = () => patchSweep(model, { input: clean }, { input: corrupted }, residPre, 'all', metric, { lastPosition: true });
  const result = await sweep(); // also the warm-up
  const peer = await TorchPeer.start('./torch_patch_sweep.py', ['--weights', dir, '--clean', join(dir, 'clean.npy'), '--corrupted', join(dir, 'corrupted.npy'), '--token', String(token)], threads);
  const perBlock = 5;
  const blocks = Math.max(3, Math.ceil(reps / perBlock));
  const timed = await alternate(blocks, { call: sweep, calls: perBlock, unitsPerCall: 1 }, peer, perBlock);
  peer.close();
  const torchEffects = peer.ready.effects as number[][];
  const plain = await runWithCache(model, { input: clean }, []);
  const logitsError = Math.max(...Array.from(readNpy(join(dir, 'torch_logits.npy')).data as Float32Array, (v, i) => Math.abs(v - Number(plain.outputs.output.data[i]))));
  const effectError = Math.max(...result.effects.flatMap((row, h) => row.map((value, p) => Math.abs(value - torchEffects[h][p]))));
  console.log(JSON.stringify({
    case: 'patch', model: 'gpt fixture (2 blocks, d=32, 12 positions)', batch: 32, hooks: residPre, positions: 12, threads,
    teardown_ms: round(median(timed.ours)), torch_ms: round(median(timed.theirs)), speedup: round(median(timed.theirs) / median(timed.ours), 2), ...peerFields(threads),
    block_speedups: [round(Math.min(...timed.blockRatios), 2), round(Math.max(...timed.blockRatios), 2)], blocks, sweeps_per_block: perBlock,
    ort_runs: result.runs, torch_forwards: residPre.length * 12, teardown_cpu_per_wall: round(timed.cpu.ours, 2), torch_cpu_per_wall: round(timed.cpu.theirs, 2), torch: peer.ready.torch,
    max_abs_effect_difference: effectError, max_abs_logit_difference: logitsError,
  }));
  await model.release();
}

async function benchCache(): Promise<void> {
  // An activation-heavy conv net and a compute-heavy MLP, each at a batch where a plain run takes ≥ 10 ms.
  await cacheOverhead('cnn fixture', `${fixture('cnn')}model.onnx`, repeatRows(readNpy(`${fixture('cnn')}input.npy`), 128)); // [1024, 1, 28, 28]
  await cacheOverhead('examples/mnist-mlp.onnx', fileURLToPath(new URL('../examples/mnist-mlp.onnx', import.meta.url)), repeatRows(loadDigits('test').images, 4)); // [8016, 784]
}

async function cacheOverhead(label: string, path: string, input: Tensor): Promise<void> {
  const model = Model.load(path, { threads });
  const modules = model.hooks.hooks.filter((hook) => hook.kind === 'module').map((hook) => hook.name);
  const values = model.hooks.hooks.filter((hook) => hook.kind === 'value').map((hook) => hook.name);
  const variants: [string, string[]][] = [['plain', []], ['modules', modules], ['values', values]];
  const times = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  for (const [, patterns] of variants) await runWithCache(model, { input }, patterns); // warm-up
  for (let rep = 0; rep < reps; rep++) {
    for (const [name, patterns] of variants) { // interleaved, so drift hits every variant alike
      const start = performance.now();
      await runWithCache(model, { input }, patterns);
      times.get(name)!.push(performance.now() - start);
    }
  }
  const plain = median(times.get('plain')!);
  const bytes = (patterns: string[]) => runWithCache(model, { input }, patterns).then(({ cache }) => [...cache.values()].reduce((sum, t) => sum + t.data.byteLength, 0));
  console.log(JSON.stringify({
    case: 'cache', model: label, batch: input.dims[0], threads, reps,
    cached_mb: { modules: round((await bytes(modules)) / 1e6, 1), values: round((await bytes(values)) / 1e6, 1) },
    plain_ms: round(plain), all_modules_ms: round(median(times.get('modules')!)), all_values_ms: round(median(times.get('values')!)),
    module_hooks: modules.length, raw_values: values.length,
    all_modules_ratio: round(median(times.get('modules')!) / plain, 2), all_values_ratio: round(median(times.get('values')!) / plain, 2), ...peerFields(threads),
  }));
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
  const floats = (dims: number[]) => tensor('float32', dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, random));
  const classes = (n: number, count: number) => tensor('int64', [n], Array.from({ length: n }, () => Math.floor(random() * count)));
  const tokens = tensor('int64', [3831, 3], Array.from({ length: 3831 * 3 }, (_, k) => (k % 3 === 2 ? 113 : Math.floor(random() * 113))));
  const sgd: OptimizerSpec = { kind: 'sgd', momentum: 0.9, weightDecay: 0, betas: [0.9, 0.999], eps: 1e-8 };
  const adamw: OptimizerSpec = { kind: 'adamw', momentum: 0, weightDecay: 0.01, betas: [0.9, 0.999], eps: 1e-8 };
  // Steps per block: about half a second of work.
  const cases = [
    { name: 'mlp', block: 192, proto: () => buildModel(parseModelSpec('mlp:hidden=256-256'), { kind: 'features', features: 784 }, 10, 0).proto, input: floats([128, 784]), target: classes(128, 10), optimizer: sgd, lr: 0.01, positions: 'all' as const },
    { name: 'cnn', block: 64, proto: () => fixtureCnn(0), input: floats([64, 1, 28, 28]), target: classes(64, 10), optimizer: adamw, lr: 1e-3, positions: 'all' as const },
    {
      name: 'transformer', block: 4, proto: () => buildModel(parseModelSpec('transformer:layers=1,heads=4,d_model=128,d_mlp=512,act=relu,ln=false,init=nanda'), { kind: 'tokens', length: 3, vocab: 114 }, 113, 0).proto,
      input: tokens, target: classes(3831, 113), optimizer: { ...adamw, weightDecay: 1, betas: [0.9, 0.98] as [number, number] }, lr: 1e-3, positions: 'last' as const,
    },
  ];
  const blocks = Math.max(3, Math.round(reps / 3));
  for (const threadCount of [1, 2]) {
    for (const benchCase of cases.filter((c) => !flags.case || c.name === flags.case)) {
      const model = Model.fromProto(benchCase.proto(), benchCase.name, { threads: threadCount });
      // As the trainer builds it: a model scored on its last position computes only that position after the last attention.
      const stepper = await Stepper.create(model, { input: benchCase.input }, benchCase.target, { kind: 'cross-entropy', positions: benchCase.positions, sliceEarly: benchCase.positions === 'last' }, benchCase.optimizer, undefined, { threads: threadCount });
      const state = stepper.initialState(model);
      const stepsPerRun = Math.min(MAX_STEPS_PER_RUN, benchCase.block);
      let t = 0;
      const run = () => stepper.steps(state, Array.from({ length: stepsPerRun }, () => ({ feeds: { input: benchCase.input }, target: benchCase.target, lr: benchCase.lr, t: ++t })));
      const peer = await TorchPeer.start('./torch_train.py', ['--case', benchCase.name], threadCount);
      await run(); // warm-up
      const timed = await alternate(blocks, { call: run, calls: Math.ceil(benchCase.block / stepsPerRun), unitsPerCall: stepsPerRun }, peer, benchCase.block);
      peer.close();
      await stepper.release();
      console.log(JSON.stringify({
        case: `train-${benchCase.name}`, threads: threadCount, teardown_ms_per_step: round(median(timed.ours)), torch_ms_per_step: round(median(timed.theirs)),
        ratio: round(median(timed.theirs) / median(timed.ours), 2), ...peerFields(threadCount), block_ratios: [round(Math.min(...timed.blockRatios), 2), round(Math.max(...timed.blockRatios), 2)],
        steps_per_run: stepsPerRun, blocks, steps_per_block: benchCase.block,
        teardown_cpu_per_wall: round(timed.cpu.ours, 2), torch_cpu_per_wall: round(timed.cpu.theirs, 2), torch: peer.ready.torch,
      }));
    }
  }
}


/**
 * A PyTorch side as a server (bench/torch_*.py): it prints one JSON line when ready, then for each
 * line with a count it runs that many timed repetitions and prints their milliseconds.
 */
class TorchPeer {
  private constructor(private readonly child: ChildProcessWithoutNullStreams, private readonly lines: AsyncIterator<string>, readonly ready: Record<string, unknown> & { torch: string }) {}

  static async start(script: string, args: string[], threadCount: number): Promise<TorchPeer> {
    const child = spawn('/usr/bin/python3', [fileURLToPath(new URL(script, import.meta.url)), ...args, '--threads', String(threadCount)], { env: torchEnv(threadCount) });
    let stderr = '';
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) throw new Error(`bench: the PyTorch side failed:\n${stderr}`);
    return new TorchPeer(child, lines, JSON.parse(first.value));
  }

  async time(count: number): Promise<{ times_ms: number[]; cpu_per_wall: number }> {
    this.child.stdin.write(`${count}\n`);
    const line = await this.lines.next();
    if (line.done) throw new Error('bench: the PyTorch side stopped');
    return JSON.parse(line.value);
  }

  close(): void {
    this.child.stdin.end();
  }
}

/**
 * Alternates timing blocks between teardown and the peer, `blocks` times, with a pause before each
 * block so the other side's idle threads stop spinning; drift on this shared machine then reaches
 * both alike. Each teardown call counts as `unitsPerCall` units (steps of a multi-step run); the
 * peer times `peerUnits` units per block, averaged over runs of `unitsPerCall` like teardown's.
 * Times are per unit.
 */
async function alternate(blocks: number, ours: { call: () => Promise<unknown>; calls: number; unitsPerCall: number }, peer: TorchPeer, peerUnits: number): Promise<{ ours: number[]; theirs: number[]; blockRatios: number[]; cpu: { ours: number; theirs: number } }> {
  const result = { ours: [] as number[], theirs: [] as number[], blockRatios: [] as number[] };
  const cpu = { ours: [] as number[], theirs: [] as number[] };
  for (let b = 0; b < blocks; b++) {
    await pause();
    const block = await timeIt(ours.calls, ours.call);
    await pause();
    const theirs = await peer.time(peerUnits);
    const perUnit = block.times.map((ms) => ms / ours.unitsPerCall);
    const peerPerUnit = chunkMeans(theirs.times_ms, ours.unitsPerCall);
    result.ours.push(...perUnit);
    result.theirs.push(...peerPerUnit);
    result.blockRatios.push(median(peerPerUnit) / median(perUnit));
    cpu.ours.push(block.cpuPerWall);
    cpu.theirs.push(theirs.cpu_per_wall);
  }
  return { ...result, cpu: { ours: median(cpu.ours), theirs: median(cpu.theirs) } };
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 300));

/**
 * The means of consecutive runs of `size` values: the peer's single-step times made comparable with
 * teardown's, each of which is the mean over one multi-step run. (A median of single steps drops
 * the slow steps a median of 16-step means keeps: 1–3% lower on PyTorch's CNN step here.)
 */
function chunkMeans(values: number[], size: number): number[] {
  const means: number[] = [];
  for (let start = 0; start + size <= values.length; start += size) means.push(values.slice(start, start + size).reduce((a, b) => a + b, 0) / size);
  return means;
}

/** teardown inspect of the MNIST MLP over 10,000 and 100,000 examples, each in its own process for its peak memory. */
async function benchInspect(): Promise<void> {
  for (const examples of [10_000, 100_000]) {
    const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./inspect-child.ts', import.meta.url)), String(examples), String(threads)], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(`bench: inspect of ${examples} examples failed:\n${child.stderr}`);
    console.log(JSON.stringify({ case: 'inspect', model: 'examples/mnist-mlp.onnx', ...JSON.parse(child.stdout), ...peerFields(threads) }));
  }
}

/**
 * Issue 11's scale bench: a GPT-2-small-shaped model (bench/torch_scale.py exports it and its
 * weights into a temporary folder; nothing is committed), each case run by teardown
 * (bench/scale-child.ts) and by PyTorch with forward hooks on the same weights (bench/torch_scale.py),
 * each side in its own process for its peak RSS, alternating. The patch sweep and inspect are
 * too slow on this 2-core machine to run in full on the PyTorch side (a full sweep is 1,536
 * forwards of 8 sequences, ~2.5 s each at one thread): a fraction is measured and said so.
 */
async function benchScale(): Promise<void> {
  ensureTorch();
  const dir = mkdtempSync(join(tmpdir(), 'teardown-scale-'));
  const python = (args: string[]): ChildResult => {
    const child = spawnSync('/usr/bin/python3', [fileURLToPath(new URL('./torch_scale.py', import.meta.url)), ...args], { env: torchEnv(threads), encoding: 'utf8', maxBuffer: 1 << 28 });
    if (child.status !== 0) throw new Error(`bench: torch_scale.py ${args.join(' ')} failed:\n${child.stderr}`);
    return JSON.parse(child.stdout.trim().split('\n').pop() || '{}');
  };
  const teardown = (args: string[]): ChildResult => {
    const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./scale-child.ts', import.meta.url)), ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
    if (child.status !== 0) throw new Error(`bench: scale-child.ts ${args.join(' ')} failed:\n${child.stderr}`);
    return JSON.parse(child.stdout.trim().split('\n').pop() || '{}');
  };
  try {
    python(['export', dir]);
    const weightsMb = round(statSync(join(dir, 'weights.pt')).size / 1e6, 1); // PyTorch's state dict: the float32 weights, 124M parameters
    const model = Model.load(join(dir, 'model.onnx'), { threads });
    writeFileSync(join(dir, 'module_hooks.json'), JSON.stringify(model.hooks.hooks.filter((hook) => hook.kind === 'module').map((hook) => hook.name)));
    await model.release();
    const vocab = 50257;
    writeFileSync(join(dir, 'cache_tokens.npy'), encodeNpy(randomTokens(1, [32, 128], vocab)));
    writeFileSync(join(dir, 'clean.npy'), encodeNpy(randomTokens(2, [8, 128], vocab)));
    writeFileSync(join(dir, 'corrupted.npy'), encodeNpy(randomTokens(3, [8, 128], vocab)));
    writeFileSync(join(dir, 'inspect_tokens.npy'), encodeNpy(randomTokens(4, [SCALE_INSPECT_SEQUENCES, 128], vocab)));
    writeFileSync(join(dir, 'compare_hooks.json'), JSON.stringify(['h.0.mlp.gelu', 'h.11.attn.softmax', 'lm_head']));
    writeFileSync(join(dir, 'patch.json'), JSON.stringify({ positions: SCALE_PATCH_POSITIONS, token: 7 }));
    const inspectHooks = ['h.0.attn.softmax', 'h.5.attn.softmax', 'h.11.attn.softmax'];
    writeFileSync(join(dir, 'inspect.json'), JSON.stringify({ hooks: inspectHooks, batch_size: 8 }));
    const common = { model: 'GPT-2-small shape (12 layers, d_model 768, 12 heads, vocab 50257, context 128, random init)', threads, weights_mb: weightsMb };
    const side = (runs: { times_ms: number[]; max_rss_mb: number }[]) => ({ ms: round(median(runs.flatMap((r) => r.times_ms)), 0), rss: Math.max(...runs.map((r) => r.max_rss_mb)) });

    // (a) every module hook over 32 sequences, batches of 8; two alternating blocks, one warm run each.
    const ours: ChildResult[] = [];
    const theirs: ChildResult[] = [];
    for (let block = 0; block < 2; block++) {
      ours.push(teardown(['cache', dir, '1', String(threads)]));
      theirs.push(python(['cache', dir, '1', String(threads)]));
    }
    const cacheErrors = Object.fromEntries((JSON.parse(readFileSync(join(dir, 'compare_hooks.json'), 'utf8')) as string[]).map((name) => [name, relativeError(readNpy(join(dir, `teardown_cache_${name}.npy`)), readNpy(join(dir, `torch_cache_${name}.npy`)))]));
    const [cacheOurs, cacheTheirs] = [side(ours), side(theirs)];
    console.log(JSON.stringify({
      case: 'scale-cache', ...common, sequences: 32, batch: 8, module_hooks: ours[0].hooks, cached_mb_per_batch: ours[0].cached_mb_per_batch,
      teardown_ms: cacheOurs.ms, torch_ms: cacheTheirs.ms, speedup: round(cacheTheirs.ms / cacheOurs.ms, 2), ...peerFields(threads),
      teardown_max_rss_mb: cacheOurs.rss, torch_max_rss_mb: cacheTheirs.rss, memory_goal_mb: Math.round(2 * weightsMb + ours[0].cached_mb_per_batch),
      blocks: 2, max_rel_error_last_batch: cacheErrors,
    }));

    // (b) resid_pre patch sweep, 8 prompt pairs × 12 blocks × a fraction of the 128 positions. teardown: one
    // warm-up sweep (its sessions are built once per sweep and reused over the positions), then one timed;
    // PyTorch: one timed sweep (nothing to warm beyond the first forward).
    const patchOurs = teardown(['patch', dir, '1', String(threads)]);
    const patchTheirs = python(['patch', dir, '0', String(threads)]);
    const effectError = Math.max(...(patchOurs.effects as number[][]).flatMap((row, h) => row.map((value, p) => Math.abs(value - patchTheirs.effects[h][p]))));
    console.log(JSON.stringify({
      case: 'scale-patch', ...common, pairs: 8, blocks_patched: 12, positions: SCALE_PATCH_POSITIONS, fraction_of_sweep: `${SCALE_PATCH_POSITIONS.length}/128 positions`,
      teardown_ms: round(patchOurs.times_ms[0], 0), teardown_warmup_ms: round(patchOurs.warmup_ms, 0), torch_ms: round(patchTheirs.times_ms[0], 0),
      speedup: round(patchTheirs.times_ms[0] / patchOurs.times_ms[0], 2), ...peerFields(threads),
      teardown_max_rss_mb: patchOurs.max_rss_mb, torch_max_rss_mb: patchTheirs.max_rss_mb, torch_forwards: 12 * SCALE_PATCH_POSITIONS.length + 1, ort_runs: patchOurs.ort_runs,
      max_abs_effect_difference: effectError,
    }));

    // (c) inspect of three attention patterns (units: the 12 heads of each), cold, one run a side.
    const inspectOurs = teardown(['inspect', dir, '0', String(threads)]);
    const inspectTheirs = python(['inspect', dir, '0', String(threads)]);
    const maxDifference = (field: string, relative: boolean) => Math.max(...(inspectOurs[field] as number[][]).flatMap((row, h) => row.map((value, u) => {
      const reference = inspectTheirs[field][h][u];
      return Math.abs(value - reference) / (relative ? Math.max(...(inspectTheirs[field][h] as number[]).map(Math.abs)) : 1);
    })));
    console.log(JSON.stringify({
      case: 'scale-inspect', ...common, sequences: SCALE_INSPECT_SEQUENCES, fraction: `${SCALE_INSPECT_SEQUENCES}/64 sequences`, hooks: inspectHooks, units_per_hook: 12, metric: 'output-change (no labels)',
      teardown_ms: round(inspectOurs.times_ms[0], 0), torch_ms: round(inspectTheirs.times_ms[0], 0), speedup: round(inspectTheirs.times_ms[0] / inspectOurs.times_ms[0], 2), ...peerFields(threads),
      teardown_max_rss_mb: inspectOurs.max_rss_mb, torch_max_rss_mb: inspectTheirs.max_rss_mb,
      max_abs_census_mean_difference: maxDifference('census_mean', false), max_abs_census_std_difference: maxDifference('census_std', false),
      max_importance_difference_relative_to_hook_max: maxDifference('importance', true), teardown_notes: inspectOurs.notes,
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The patch sweep's positions measured: a fraction of the 128 (the full sweep is linear in them on both sides). */
const SCALE_PATCH_POSITIONS = [0, 127];
/** Sequences inspected: a fraction of the 64 (PyTorch needs 39 forwards of every batch for the ablations). */
const SCALE_INSPECT_SEQUENCES = 4;

/** One scale-child.ts or torch_scale.py line: times, peak RSS, and the case's own fields. */
type ChildResult = { times_ms: number[]; max_rss_mb: number } & Record<string, any>;

const cases: Record<string, () => Promise<void>> = { patch: benchPatch, cache: benchCache, train: benchTrain, inspect: benchInspect, scale: benchScale };
// scale runs only when named: it takes ~10 minutes.
for (const name of positionals.length ? positionals : Object.keys(cases).filter((name) => name !== 'scale')) {
  if (!cases[name]) throw new Error(`bench: unknown case '${name}' (cases: ${Object.keys(cases).join(', ')})`);
  await cases[name]();
}
