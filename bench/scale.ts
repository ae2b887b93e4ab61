/**
 * Issue 11's scale bench (`npm run bench -- scale`): a GPT-2-small-shaped model (bench/torch_scale.py
 * exports it and its weights into a temporary folder; nothing is committed), each case run by teardown
 * (bench/scale-child.ts) and by PyTorch with forward hooks on the same weights (bench/torch_scale.py),
 * each side in its own process for its peak RSS, alternating. The patch sweep and inspect are
 * too slow on this 2-core machine to run in full on the PyTorch side (a full sweep is 1,536
 * forwards of 8 sequences, ~2.5 s each at one thread): a fraction is measured and said so.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeNpy, readNpy } from '../src/data/npy.ts';
import { Model } from '../src/runtime/model.ts';
import { relativeError } from '../src/tensor.ts';
import { ensureTorch, median, peerFields, randomTokens, round, torchEnv } from './peer.ts';

/** `only`: one case (cache, patch or inspect), e.g. `npm run bench -- scale --case patch`; all three by default. */
export async function benchScale(threads: number, only?: string): Promise<void> {
  const wanted = (name: string) => !only || only === name;
  ensureTorch();
  // TEARDOWN_SCALE_DIR: a folder kept between runs (the export is made once, when missing), for
  // measuring one change after another; by default a temporary folder, deleted afterwards.
  const kept = process.env.TEARDOWN_SCALE_DIR;
  const dir = kept ?? mkdtempSync(join(tmpdir(), 'teardown-scale-'));
  const python = (args: string[]): ChildResult => {
    const child = spawnSync(
      '/usr/bin/python3',
      [fileURLToPath(new URL('./torch_scale.py', import.meta.url)), ...args],
      { env: torchEnv(threads), encoding: 'utf8', maxBuffer: 1 << 28 },
    );
    if (child.status !== 0)
      throw new Error(`bench: torch_scale.py ${args.join(' ')} failed:\n${child.stderr}`);
    return JSON.parse(child.stdout.trim().split('\n').pop() || '{}');
  };
  const teardown = (args: string[]): ChildResult => {
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./scale-child.ts', import.meta.url)), ...args],
      { encoding: 'utf8', maxBuffer: 1 << 28 },
    );
    if (child.status !== 0)
      throw new Error(`bench: scale-child.ts ${args.join(' ')} failed:\n${child.stderr}`);
    return JSON.parse(child.stdout.trim().split('\n').pop() || '{}');
  };
  try {
    if (!kept || !existsSync(join(dir, 'model.onnx'))) python(['export', dir]);
    const weightsMb = round(statSync(join(dir, 'weights.pt')).size / 1e6, 1); // PyTorch's state dict: the float32 weights, 124M parameters
    const model = Model.load(join(dir, 'model.onnx'), { threads });
    writeFileSync(
      join(dir, 'module_hooks.json'),
      JSON.stringify(
        model.hooks.hooks.filter((hook) => hook.kind === 'module').map((hook) => hook.name),
      ),
    );
    await model.release();
    const vocab = 50257;
    writeFileSync(join(dir, 'cache_tokens.npy'), encodeNpy(randomTokens(1, [32, 128], vocab)));
    writeFileSync(join(dir, 'clean.npy'), encodeNpy(randomTokens(2, [8, 128], vocab)));
    writeFileSync(join(dir, 'corrupted.npy'), encodeNpy(randomTokens(3, [8, 128], vocab)));
    writeFileSync(
      join(dir, 'inspect_tokens.npy'),
      encodeNpy(randomTokens(4, [SCALE_INSPECT_SEQUENCES, 128], vocab)),
    );
    writeFileSync(
      join(dir, 'compare_hooks.json'),
      JSON.stringify(['h.0.mlp.gelu', 'h.11.attn.softmax', 'lm_head']),
    );
    writeFileSync(
      join(dir, 'patch.json'),
      JSON.stringify({ positions: SCALE_PATCH_POSITIONS, token: 7 }),
    );
    const inspectHooks = ['h.0.attn.softmax', 'h.5.attn.softmax', 'h.11.attn.softmax'];
    writeFileSync(
      join(dir, 'inspect.json'),
      JSON.stringify({ hooks: inspectHooks, batch_size: 8 }),
    );
    const common = {
      model:
        'GPT-2-small shape (12 layers, d_model 768, 12 heads, vocab 50257, context 128, random init)',
      threads,
      weights_mb: weightsMb,
    };
    const side = (runs: { times_ms: number[]; max_rss_mb: number }[]) => ({
      ms: round(median(runs.flatMap((r) => r.times_ms)), 0),
      rss: Math.max(...runs.map((r) => r.max_rss_mb)),
    });

    if (wanted('cache')) {
      // (a) every module hook over 32 sequences, batches of 8; two alternating blocks, one warm run each.
      const ours: ChildResult[] = [];
      const theirs: ChildResult[] = [];
      const loadAtStart = round(loadavg()[0], 1);
      for (let block = 0; block < 2; block++) {
        ours.push(teardown(['cache', dir, '1', String(threads)]));
        theirs.push(python(['cache', dir, '1', String(threads)]));
      }
      // Each side's run in each block: wall and CPU ms of the timed run, peak RSS.
      const perBlock = (runs: ChildResult[]) =>
        runs.map((r) => [round(r.times_ms[0], 0), round(r.cpu_ms[0], 0), r.max_rss_mb]);
      const cacheErrors = Object.fromEntries(
        (JSON.parse(readFileSync(join(dir, 'compare_hooks.json'), 'utf8')) as string[]).map(
          (name) => [
            name,
            relativeError(
              readNpy(join(dir, `teardown_cache_${name}.npy`)),
              readNpy(join(dir, `torch_cache_${name}.npy`)),
            ),
          ],
        ),
      );
      const [cacheOurs, cacheTheirs] = [side(ours), side(theirs)];
      // CPU time (user + system): on this shared machine wall time includes waiting for a core.
      const cpu = (runs: ChildResult[]) => round(median(runs.flatMap((r) => r.cpu_ms)), 0);
      console.log(
        JSON.stringify({
          case: 'scale-cache',
          ...common,
          sequences: 32,
          batch: 8,
          module_hooks: ours[0].hooks,
          cached_mb_per_batch: ours[0].cached_mb_per_batch,
          teardown_ms: cacheOurs.ms,
          torch_ms: cacheTheirs.ms,
          speedup: round(cacheTheirs.ms / cacheOurs.ms, 2),
          ...peerFields(threads),
          teardown_cpu_ms: cpu(ours),
          torch_cpu_ms: cpu(theirs),
          cpu_speedup: round(cpu(theirs) / cpu(ours), 2),
          teardown_max_rss_mb: cacheOurs.rss,
          torch_max_rss_mb: cacheTheirs.rss,
          memory_goal_mb: Math.round(2 * weightsMb + ours[0].cached_mb_per_batch),
          blocks: 2,
          teardown_wall_cpu_rss_by_block: perBlock(ours),
          torch_wall_cpu_rss_by_block: perBlock(theirs),
          load_average_start_end: [loadAtStart, round(loadavg()[0], 1)],
          max_rel_error_last_batch: cacheErrors,
        }),
      );
    }

    if (wanted('patch')) {
      // (b) resid_pre patch sweep, 8 prompt pairs × 12 blocks × a fraction of the 128 positions, in two
      // alternating blocks (load from other sessions drifts over the minutes each takes). teardown: one
      // warm-up sweep (it builds the sessions), then one timed; PyTorch: one timed sweep (nothing to warm
      // beyond the first forward). The speed-up is the median of the blocks' ratios.
      const patchOurs: ChildResult[] = [];
      const patchTheirs: ChildResult[] = [];
      for (let block = 0; block < 2; block++) {
        patchOurs.push(teardown(['patch', dir, '1', String(threads)]));
        patchTheirs.push(python(['patch', dir, '0', String(threads)]));
      }
      const effectError = Math.max(
        ...(patchOurs[0].effects as number[][]).flatMap((row, h) =>
          row.map((value, p) => Math.abs(value - patchTheirs[0].effects[h][p])),
        ),
      );
      const blockRatios = patchOurs.map((ours, b) =>
        round(patchTheirs[b].times_ms[0] / ours.times_ms[0], 2),
      );
      const cpuRatios = patchOurs.map((ours, b) =>
        round(patchTheirs[b].cpu_ms[0] / ours.cpu_ms[0], 2),
      );
      console.log(
        JSON.stringify({
          case: 'scale-patch',
          ...common,
          pairs: 8,
          blocks_patched: 12,
          positions: SCALE_PATCH_POSITIONS,
          fraction_of_sweep: `${SCALE_PATCH_POSITIONS.length}/128 positions`,
          teardown_ms: patchOurs.map((r) => round(r.times_ms[0], 0)),
          teardown_warmup_ms: patchOurs.map((r) => round(r.warmup_ms, 0)),
          torch_ms: patchTheirs.map((r) => round(r.times_ms[0], 0)),
          speedup: round(median(blockRatios), 2),
          block_speedups: blockRatios,
          ...peerFields(threads),
          teardown_cpu_ms: patchOurs.map((r) => round(r.cpu_ms[0], 0)),
          torch_cpu_ms: patchTheirs.map((r) => round(r.cpu_ms[0], 0)),
          cpu_block_speedups: cpuRatios,
          recomputed: patchOurs[0].paths,
          teardown_notes: patchOurs[0].notes,
          teardown_max_rss_mb: Math.max(...patchOurs.map((r) => r.max_rss_mb)),
          torch_max_rss_mb: Math.max(...patchTheirs.map((r) => r.max_rss_mb)),
          torch_forwards: 12 * SCALE_PATCH_POSITIONS.length + 1,
          ort_runs: patchOurs[0].ort_runs,
          max_abs_effect_difference: effectError,
        }),
      );
    }

    if (wanted('inspect')) {
      // (c) inspect of three attention patterns (units: the 12 heads of each), cold, one run a side.
      const inspectOurs = teardown(['inspect', dir, '0', String(threads)]);
      const inspectTheirs = python(['inspect', dir, '0', String(threads)]);
      const maxDifference = (field: string, relative: boolean) =>
        Math.max(
          ...(inspectOurs[field] as number[][]).flatMap((row, h) =>
            row.map((value, u) => {
              const reference = inspectTheirs[field][h][u];
              return (
                Math.abs(value - reference) /
                (relative ? Math.max(...(inspectTheirs[field][h] as number[]).map(Math.abs)) : 1)
              );
            }),
          ),
        );
      console.log(
        JSON.stringify({
          case: 'scale-inspect',
          ...common,
          sequences: SCALE_INSPECT_SEQUENCES,
          fraction: `${SCALE_INSPECT_SEQUENCES}/64 sequences`,
          hooks: inspectHooks,
          units_per_hook: 12,
          metric: 'output-change (no labels)',
          teardown_ms: round(inspectOurs.times_ms[0], 0),
          torch_ms: round(inspectTheirs.times_ms[0], 0),
          speedup: round(inspectTheirs.times_ms[0] / inspectOurs.times_ms[0], 2),
          ...peerFields(threads),
          teardown_max_rss_mb: inspectOurs.max_rss_mb,
          torch_max_rss_mb: inspectTheirs.max_rss_mb,
          max_abs_census_mean_difference: maxDifference('census_mean', false),
          max_abs_census_std_difference: maxDifference('census_std', false),
          max_importance_difference_relative_to_hook_max: maxDifference('importance', true),
          teardown_notes: inspectOurs.notes,
        }),
      );
    }
  } finally {
    if (!kept) rmSync(dir, { recursive: true, force: true });
  }
}

/** The patch sweep's positions measured: a fraction of the 128 (the full sweep is linear in them on both sides). */
const SCALE_PATCH_POSITIONS = [0, 127];
/** Sequences inspected: a fraction of the 64 (PyTorch needs 39 forwards of every batch for the ablations). */
const SCALE_INSPECT_SEQUENCES = 4;

/** One scale-child.ts or torch_scale.py line: times, peak RSS, and the case's own fields. */
type ChildResult = { times_ms: number[]; max_rss_mb: number } & Record<string, any>;
