/**
 * teardown's side of `npm run bench -- train-gpt2`, in its own process for its peak memory:
 * `train-gpt2-child.ts DIR STEPS THREADS` loads DIR/model.onnx (bench/torch_train_gpt2.py's export),
 * builds the training step as the trainer does (forward, cross-entropy over every position,
 * backward, AdamW on every parameter), runs one warm-up step and STEPS timed steps, one step per
 * onnxruntime run, on DIR/tokens.npy → DIR/targets.npy, and prints one JSON line like the PyTorch side's.
 */
import { join } from 'node:path';
import { readNpy } from '../src/data/npy.ts';
import { Model } from '../src/runtime/model.ts';
import type { OptimizerSpec } from '../src/train/optimizers.ts';
import { Stepper } from '../src/train/stepper.ts';

const [dir, stepsText, threadsText] = process.argv.slice(2);
const threads = Number(threadsText);
/** torch_train_gpt2.py's optimizer: torch.optim.AdamW(lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01). */
const adamw: OptimizerSpec = {
  kind: 'adamw',
  momentum: 0,
  weightDecay: 0.01,
  betas: [0.9, 0.999],
  eps: 1e-8,
};
const LR = 1e-4;

const model = Model.load(join(dir, 'model.onnx'), { threads });
const tokens = readNpy(join(dir, 'tokens.npy')); // [8, 128]
const targets = readNpy(join(dir, 'targets.npy')); // [8, 128]
const buildStart = performance.now();
const stepper = await Stepper.create(
  model,
  { input_ids: tokens },
  targets,
  { kind: 'cross-entropy', positions: 'all' },
  adamw,
  undefined,
  { threads },
);
const state = stepper.initialState(model);
const buildMs = performance.now() - buildStart;
/** Peak RSS of building the step (shape probes of the 650 MB model, the step graph, its session), apart from the steps'. */
const buildMaxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
const stepRssMb: number[] = [];
const step = async (t: number) =>
  (await stepper.step(state, { input_ids: tokens }, targets, LR, t)).loss;

const losses = [await step(1)];
const times: number[] = [];
const cpuStart = process.cpuUsage();
for (let t = 2; t <= Number(stepsText) + 1; t++) {
  const start = performance.now();
  losses.push(await step(t));
  times.push(performance.now() - start);
  stepRssMb.push(Math.round(process.memoryUsage().rss / 2 ** 20));
}
const cpu = process.cpuUsage(cpuStart);
console.log(
  JSON.stringify({
    times_ms: times,
    losses,
    cpu_per_wall: (cpu.user + cpu.system) / 1000 / times.reduce((a, b) => a + b, 0),
    max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    build_max_rss_mb: buildMaxRssMb,
    step_rss_mb: Math.max(...stepRssMb),
    build_ms: Math.round(buildMs),
    parameters: stepper.graph.parameters.length,
  }),
);
await stepper.release();
await model.release();
