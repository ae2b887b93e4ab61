/**
 * The run behind bench/train-gpt2-profile.ts, in its own process because onnxruntime completes
 * its profile file only when the process exits: `node --expose-gc --import tsx
 * train-gpt2-profile-run.ts DIR THREADS` builds the step graph the trainer runs (one step, without
 * the Scan of the step loop around it) for DIR/model.onnx and DIR/tokens.npy → DIR/targets.npy,
 * runs it twice in an onnxruntime session with profiling on (its own session: teardown's runtime
 * has no profiling option), and prints the profile's path and the second run's wall time.
 */
import { readdirSync } from 'node:fs';
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

const [dir, threadsText] = process.argv.slice(2);
/** onnxruntime names the file `<prefix>_<date>.json`. */
const PROFILE_PREFIX = 'teardown-step-profile';
const threads = Number(threadsText);
const adamw: OptimizerSpec = {
  kind: 'adamw',
  momentum: 0,
  weightDecay: 0.01,
  betas: [0.9, 0.999],
  eps: 1e-8,
};

const model = Model.load(join(dir, 'model.onnx'), { threads });
const tokens = readNpy(join(dir, 'tokens.npy'));
const targets = readNpy(join(dir, 'targets.npy'));
const graph = await buildStepGraph(
  model,
  { input_ids: tokens },
  targets,
  { kind: 'cross-entropy', positions: 'all' },
  adamw,
);
const session = await ort.InferenceSession.create(encodeModel(graph.proto), {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'extended',
  enableProfiling: true,
  profileFilePrefix: join(dir, PROFILE_PREFIX),
  extra: { session: { intra_op: { allow_spinning: '0' } } },
});

const asOrt = (value: Tensor) =>
  new ort.Tensor(
    value.dtype as 'float32' | 'int64',
    value.data as Float32Array | BigInt64Array,
    value.dims,
  );
const initializers = new Map(model.proto.graph.initializer.map((t) => [t.name, t]));
const feeds: Record<string, ort.Tensor> = {
  input_ids: asOrt(tokens),
  [TARGET_INPUT]: asOrt(targets),
};
// A parameter is an initializer or an Identity copy of one (PyTorch's merged initializers), as in Stepper.initialState.
const copies = new Map(
  model.graph.nodes
    .filter((node) => node.opType === 'Identity')
    .map((node) => [node.output[0], node.input[0]]),
);
for (const name of graph.parameters)
  feeds[name] = asOrt(
    tensorFromProto(initializers.get(name) ?? initializers.get(copies.get(name)!)!),
  );
for (const name of graph.stateInputs)
  feeds[name] = new ort.Tensor(
    'float32',
    new Float32Array(graph.stateDims.get(name)!.reduce((a, b) => a * b, 1)),
    graph.stateDims.get(name)!,
  );
for (const [name, value] of Object.entries(scalarValues(adamw, 1e-4, 1)))
  feeds[name] = new ort.Tensor('float32', Float32Array.of(value), []);

// The updated parameters and optimizer state, not the scores: what a step must produce, and 206 MB less to hold.
const fetches = [graph.loss, ...graph.nextParameter.values(), ...graph.nextState.values()];
await session.run(feeds, fetches);
(globalThis as { gc?: () => void }).gc?.(); // the first run's outputs (2 GB) before the second's (run with --expose-gc)
const start = performance.now();
await session.run(feeds, fetches);
const wallMs = performance.now() - start;
session.endProfiling(); // DIR/teardown-step-profile_<date>.json, complete when this process exits
const written = readdirSync(dir)
  .filter((file) => file.startsWith(`${PROFILE_PREFIX}_`) && file.endsWith('.json'))
  .sort()
  .at(-1)!; // the newest: names carry the date
console.log(JSON.stringify({ profile: join(dir, written), wall_ms: wallMs }));
await session.release();
await model.release();
