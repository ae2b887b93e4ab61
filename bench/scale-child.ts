/**
 * teardown's side of `npm run bench -- scale`, one case per process so that its peak memory
 * (maxRSS) is its own: `scale-child.ts CASE DIR REPS THREADS` loads DIR/model.onnx (GPT-2-small
 * shape, exported by bench/torch_scale.py), runs the case REPS times after a warm-up (REPS 0: once, cold) and prints one
 * JSON line (times in ms, peak RSS, what the comparison needs). Inputs come from DIR, written by
 * bench/run.ts (benchScale); bench/torch_scale.py does the same work on the same weights.
 */
import { floatActivationsEntering } from '../src/graph/scopes.ts';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeNpy, readNpy } from '../src/data/npy.ts';
import { inspectModel } from '../src/inspect/inspect.ts';
import { patchSweep } from '../src/inspect/patch-sweep.ts';
import { Model } from '../src/runtime/model.ts';
import { releaseRunValues } from '../src/runtime/release.ts';
import { runWithCache } from '../src/runtime/run.ts';
import { sliceRows, type Tensor } from '../src/tensor.ts';

const [benchCase, dir, repsText, threadsText] = process.argv.slice(2);
const model = Model.load(join(dir, 'model.onnx'), { threads: Number(threadsText) });
const json = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8'));

/** Every module hook, batch by batch (8 sequences): a batch's cache is dropped before the next, as a streaming run keeps it. */
async function cacheCase(first: boolean): Promise<Record<string, unknown>> {
  const tokens = readNpy(join(dir, 'cache_tokens.npy')); // [32, 128]
  const names: string[] = json('module_hooks.json');
  let cachedBytes = 0;
  let cache = new Map<string, Tensor>();
  // After each batch: JavaScript's ArrayBuffers (what V8 still holds) and the process's anonymous
  // memory (what malloc holds), MB. Equal growth in both would be references kept; growth in the
  // second alone is freed memory the allocator has not given back.
  const arrayBuffersMb: number[] = [];
  const anonymousMb: number[] = [];
  for (let start = 0; start < tokens.dims[0]; start += 8) {
    // The previous batch is freed before the next runs, as PyTorch frees it by reference count
    // and as `teardown run` does once a batch is written (runtime/release.ts).
    await releaseRunValues(cache.values());
    cache = new Map();
    ({ cache } = await runWithCache(
      model,
      { input_ids: sliceRows(tokens, start, start + 8) },
      names,
    ));
    cachedBytes = [...cache.values()].reduce((sum, value) => sum + value.data.byteLength, 0);
    arrayBuffersMb.push(Math.round(process.memoryUsage().arrayBuffers / 1e6));
    anonymousMb.push(anonymousMemoryMb());
  }
  if (first)
    for (const name of json('compare_hooks.json') as string[])
      writeNpyFile(join(dir, `teardown_cache_${name}.npy`), cache.get(name)!);
  await releaseRunValues(cache.values());
  return {
    hooks: names.length,
    cached_mb_per_batch: Number((cachedBytes / 1e6).toFixed(1)),
    array_buffers_mb_after_batch: arrayBuffersMb,
    anonymous_mb_after_batch: anonymousMb,
  };
}

/** RssAnon of /proc/self/status in MB (0 where there is none). */
function anonymousMemoryMb(): number {
  const status = existsSync('/proc/self/status') ? readFileSync('/proc/self/status', 'utf8') : '';
  const kib = Number(/^RssAnon:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
  return Math.round((kib * 1024) / 1e6);
}

/** An .npy file written from the tensor's own bytes (np.save on the PyTorch side copies nothing either; encodeNpy would copy lm_head's 206 MB). */
function writeNpyFile(path: string, value: Tensor): void {
  writeFileSync(path, encodeNpy({ ...value, data: value.data.subarray(0, 0) })); // the header alone
  appendFileSync(
    path,
    new Uint8Array(value.data.buffer, value.data.byteOffset, value.data.byteLength),
  );
}

/**
 * resid_pre of every block — the activation the block reads from outside its scope, which PyTorch's
 * forward pre-hook on the block swaps — patched at the chosen positions; metric: mean logit of one
 * token at the last position. (At opset 14 LayerNorm is decomposed, so the input of the node that
 * writes `ln_1`'s output is not the residual stream.)
 */
async function patchCase(): Promise<Record<string, unknown>> {
  const { positions, token } = json('patch.json') as { positions: number[]; token: number };
  const residPre = Array.from({ length: 12 }, (_, block) => blockInput(`/h.${block}/`));
  const metric = (logits: Tensor) => {
    const [batch, seq, vocab] = logits.dims;
    let sum = 0;
    for (let b = 0; b < batch; b++) sum += Number(logits.data[(b * seq + seq - 1) * vocab + token]);
    return sum / batch;
  };
  // TEARDOWN_CAUSAL_SUFFIX=0 recomputes every position downstream (the path before the suffix parts), for side-by-side runs.
  const causalSuffix = process.env.TEARDOWN_CAUSAL_SUFFIX !== '0';
  const result = await patchSweep(
    model,
    { input_ids: readNpy(join(dir, 'clean.npy')) },
    { input_ids: readNpy(join(dir, 'corrupted.npy')) },
    residPre,
    positions,
    metric,
    { lastPosition: true, causalSuffix },
  );
  return {
    effects: result.effects,
    ort_runs: result.runs,
    paths: result.paths,
    notes: result.notes,
  };
}

/** The one activation that nodes under `scope` read from outside it. */
function blockInput(scope: string): string {
  const read = floatActivationsEntering(model.graph, scope);
  if (read.length !== 1)
    throw new Error(
      `bench: scope '${scope}' reads ${read.length} activations from outside (${read.join(', ')}), expected one`,
    );
  return read[0];
}

/** `teardown inspect` of three hooks without labels: census, and mean-ablation importance by the output's change. */
async function inspectCase(): Promise<Record<string, unknown>> {
  const { hooks, batch_size: batchSize } = json('inspect.json') as {
    hooks: string[];
    batch_size: number;
  };
  const tokens = readNpy(join(dir, 'inspect_tokens.npy'));
  const result = await inspectModel(
    model,
    {
      examples: tokens.dims[0],
      read: (start, end) => ({ input_ids: sliceRows(tokens, start, end) }),
    },
    undefined,
    { hooks, batchSize, metric: { kind: 'output-change' } },
  );
  const byHook = (field: (unit: (typeof result.units)[number]) => number) =>
    hooks.map((hook) =>
      result.units
        .filter((unit) => unit.hook === hook)
        .sort((a, b) => a.unit - b.unit)
        .map(field),
    );
  return {
    census_mean: byHook((unit) => unit.census.mean),
    census_std: byHook((unit) => unit.census.std),
    importance: byHook((unit) => unit.importance),
    whole_hook: result.hooks.map((hook) => hook.wholeHook.importance),
    notes: result.notes,
  };
}

const cases: Record<string, (first: boolean) => Promise<Record<string, unknown>>> = {
  cache: cacheCase,
  patch: patchCase,
  inspect: inspectCase,
};
// REPS timed runs after a warm-up; REPS 0: one run, timed cold (sessions built inside it), for cases too slow to run twice.
const reps = Number(repsText);
const times: number[] = [];
// CPU time (user + system) of each timed run: on this shared machine wall time includes waiting for a core.
const cpuTimes: number[] = [];
let warmupMs: number | undefined;
let result: Record<string, unknown> = {};
for (let rep = 0; rep <= Math.max(1, reps); rep++) {
  if (reps === 0 && rep === 1) break;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  result = await cases[benchCase](rep === 0);
  const cpu = process.cpuUsage(cpuStart);
  if (rep > 0 || reps === 0) {
    times.push(performance.now() - start);
    cpuTimes.push((cpu.user + cpu.system) / 1000);
  } else warmupMs = performance.now() - start;
}
console.log(
  JSON.stringify({
    times_ms: times,
    cpu_ms: cpuTimes,
    warmup_ms: warmupMs,
    max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    ...result,
  }),
);
await model.release();
