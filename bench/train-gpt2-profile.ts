/**
 * Where teardown's GPT-2-small training step spends its time (bench/train-gpt2.ts):
 * `node --expose-gc --import tsx train-gpt2-profile.ts DIR THREADS` builds the step graph the trainer runs (one step, without
 * the Scan of the step loop around it) for DIR/model.onnx and DIR/tokens.npy → DIR/targets.npy,
 * runs it twice in an onnxruntime session with profiling on, and prints one JSON line: the second
 * run's wall time, the sum of its kernel times, and the kernel time per part of the step
 * (matrix products, AdamW update, loss), per op type (largest first) and of the largest nodes. A profiling tool, not part of the timed bench; it opens its own
 * onnxruntime session because teardown's runtime has no profiling option.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readNpy } from '../src/data/npy.ts';
import { encodeModel } from '../src/onnx/proto.ts';
import { tensorFromProto } from '../src/onnx/tensor-proto.ts';
import { TARGET_INPUT } from '../src/autodiff/loss.ts';
import { Model } from '../src/runtime/model.ts';
import { scalarValues, type OptimizerSpec } from '../src/train/optimizers.ts';
import { buildStepGraph } from '../src/train/step-graph.ts';
import type { Tensor } from '../src/tensor.ts';

interface ProfileEvent { cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } }

async function readWhenComplete(path: string): Promise<ProfileEvent[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      return JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      if (attempt === 60) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

const [dir, threadsText] = process.argv.slice(2);
const threads = Number(threadsText);
const adamw: OptimizerSpec = { kind: 'adamw', momentum: 0, weightDecay: 0.01, betas: [0.9, 0.999], eps: 1e-8 };

const model = Model.load(join(dir, 'model.onnx'), { threads });
const tokens = readNpy(join(dir, 'tokens.npy'));
const targets = readNpy(join(dir, 'targets.npy'));
const graph = await buildStepGraph(model, { input_ids: tokens }, targets, { kind: 'cross-entropy', positions: 'all' }, adamw);
const session = await ort.InferenceSession.create(encodeModel(graph.proto), {
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'extended',
  enableProfiling: true, profileFilePrefix: join(dir, 'profile'), extra: { session: { intra_op: { allow_spinning: '0' } } },
});

const asOrt = (value: Tensor) => new ort.Tensor(value.dtype as 'float32' | 'int64', value.data as Float32Array | BigInt64Array, value.dims);
const initializers = new Map(model.proto.graph.initializer.map((t) => [t.name, t]));
const feeds: Record<string, ort.Tensor> = { input_ids: asOrt(tokens), [TARGET_INPUT]: asOrt(targets) };
// A parameter is an initializer or an Identity copy of one (PyTorch's merged initializers), as in Stepper.initialState.
const copies = new Map(model.graph.nodes.filter((node) => node.opType === 'Identity').map((node) => [node.output[0], node.input[0]]));
for (const name of graph.parameters) feeds[name] = asOrt(tensorFromProto(initializers.get(name) ?? initializers.get(copies.get(name)!)!));
for (const name of graph.stateInputs) feeds[name] = new ort.Tensor('float32', new Float32Array(graph.stateDims.get(name)!.reduce((a, b) => a * b, 1)), graph.stateDims.get(name)!);
for (const [name, value] of Object.entries(scalarValues(adamw, 1e-4, 1))) feeds[name] = new ort.Tensor('float32', Float32Array.of(value), []);

// The updated parameters and optimizer state, not the scores: what a step must produce, and 206 MB less to hold.
const fetches = [graph.loss, ...graph.nextParameter.values(), ...graph.nextState.values()];
await session.run(feeds, fetches);
(globalThis as { gc?: () => void }).gc?.(); // the first run's outputs (2 GB) before the second's (run with --expose-gc)
const start = performance.now();
await session.run(feeds, fetches);
const wallMs = performance.now() - start;
session.endProfiling(); // writes DIR/profile_<date>.json, finished some time after the call returns
const profile = join(dir, readdirSync(dir).find((file) => file.startsWith('profile') && file.endsWith('.json'))!);
const events: ProfileEvent[] = await readWhenComplete(profile);

rmSync(profile);
const lastRun = events.filter((event) => event.name === 'model_run').at(-1)!;
const kernels = events.filter((event) => event.cat === 'Node' && event.name.endsWith('_kernel_time') && event.ts >= lastRun.ts && event.ts <= lastRun.ts + lastRun.dur);
const byOp = new Map<string, { ms: number; nodes: number }>();
for (const event of kernels) {
  const op = event.args?.op_name ?? '?';
  const entry = byOp.get(op) ?? { ms: 0, nodes: 0 };
  byOp.set(op, { ms: entry.ms + event.dur / 1000, nodes: entry.nodes + 1 });
}
const kernelMs = kernels.reduce((sum, event) => sum + event.dur / 1000, 0);
/** The step's parts, by node name: teardown's optimizer and loss nodes are prefixed, gradient nodes carry '/grad'. */
const partOf = (event: ProfileEvent): string => {
  const matmul = ['MatMul', 'FusedMatMul', 'Gemm'].includes(event.args?.op_name ?? '');
  if (event.name.startsWith('teardown/optimizer')) return 'AdamW update';
  if (event.name.startsWith('teardown/loss') || event.args?.op_name === 'LogSoftmax') return 'cross-entropy and its gradient';
  if (matmul) return event.name.startsWith('/lm_head/') ? 'lm_head matrix products' : 'other matrix products';
  return event.name.includes('/grad') ? 'other backward ops' : 'other forward ops';
};
const byPart = new Map<string, number>();
for (const event of kernels) byPart.set(partOf(event), (byPart.get(partOf(event)) ?? 0) + event.dur / 1000);
const round = (value: number) => Number(value.toFixed(1));
console.log(JSON.stringify({
  threads, wall_ms: round(wallMs), model_run_ms: round(lastRun.dur / 1000), kernel_ms: round(kernelMs), nodes: kernels.length,
  by_part: [...byPart].sort((a, b) => b[1] - a[1]).map(([part, ms]) => ({ part, ms: round(ms), share: Number((ms / kernelMs).toFixed(3)) })),
  by_op: [...byOp].sort((a, b) => b[1].ms - a[1].ms).map(([op, { ms, nodes }]) => ({ op, ms: round(ms), share: Number((ms / kernelMs).toFixed(3)), nodes })),
  largest_nodes: [...kernels].sort((a, b) => b.dur - a.dur).slice(0, 15).map((event) => ({ node: event.name.replace(/_kernel_time$/, ''), op: event.args?.op_name, ms: round(event.dur / 1000) })),
}));
await session.release();
await model.release();
