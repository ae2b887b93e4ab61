/**
 * Where teardown's GPT-2-small training step spends its time (bench/train-gpt2.ts):
 * `npx tsx bench/train-gpt2-profile.ts DIR THREADS` runs bench/train-gpt2-profile-run.ts (the step
 * graph under onnxruntime's profiler, twice) and prints one JSON line about the second run: its
 * wall time, the sum of its kernel times, and the kernel time per part of the step (matrix
 * products, AdamW update, loss), per op type (largest first) and of the largest nodes. DIR holds
 * bench/torch_train_gpt2.py's export. A profiling tool, not part of the timed bench.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string };
}

const [dir, threadsText] = process.argv.slice(2);
const threads = Number(threadsText);
const child = spawnSync(
  process.execPath,
  [
    '--expose-gc',
    '--import',
    'tsx',
    fileURLToPath(new URL('./train-gpt2-profile-run.ts', import.meta.url)),
    dir,
    threadsText,
  ],
  { encoding: 'utf8' },
);
if (child.status !== 0) throw new Error(`train-gpt2-profile-run.ts failed:\n${child.stderr}`);
const { profile, wall_ms: wallMs } = JSON.parse(child.stdout.trim().split('\n').pop()!) as {
  profile: string;
  wall_ms: number;
};
const events: ProfileEvent[] = JSON.parse(readFileSync(profile, 'utf8'));
rmSync(profile);
const lastRun = events.filter((event) => event.name === 'model_run').at(-1)!;
const kernels = events.filter(
  (event) =>
    event.cat === 'Node' &&
    event.name.endsWith('_kernel_time') &&
    event.ts >= lastRun.ts &&
    event.ts <= lastRun.ts + lastRun.dur,
);
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
  if (event.name.startsWith('teardown/loss') || event.args?.op_name === 'LogSoftmax')
    return 'cross-entropy and its gradient';
  if (matmul)
    return event.name.startsWith('/lm_head/') ? 'lm_head matrix products' : 'other matrix products';
  return event.name.includes('/grad') ? 'other backward ops' : 'other forward ops';
};
const byPart = new Map<string, number>();
for (const event of kernels)
  byPart.set(partOf(event), (byPart.get(partOf(event)) ?? 0) + event.dur / 1000);
const round = (value: number) => Number(value.toFixed(1));
console.log(
  JSON.stringify({
    threads,
    wall_ms: round(wallMs),
    model_run_ms: round(lastRun.dur / 1000),
    kernel_ms: round(kernelMs),
    nodes: kernels.length,
    by_part: [...byPart]
      .sort((a, b) => b[1] - a[1])
      .map(([part, ms]) => ({ part, ms: round(ms), share: Number((ms / kernelMs).toFixed(3)) })),
    by_op: [...byOp]
      .sort((a, b) => b[1].ms - a[1].ms)
      .map(([op, { ms, nodes }]) => ({
        op,
        ms: round(ms),
        share: Number((ms / kernelMs).toFixed(3)),
        nodes,
      })),
    largest_nodes: [...kernels]
      .sort((a, b) => b.dur - a.dur)
      .slice(0, 15)
      .map((event) => ({
        node: event.name.replace(/_kernel_time$/, ''),
        op: event.args?.op_name,
        ms: round(event.dur / 1000),
      })),
  }),
);
