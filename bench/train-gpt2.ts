/**
 * Issue 12's GPT-2-small training bench: ms per training step (forward, cross-entropy over all 128
 * positions of 8 sequences, backward, AdamW update), teardown vs PyTorch 1.13 on the same weights
 * and batch. bench/torch_train_gpt2.py exports the model (lm_head untied, see there) into a
 * temporary folder; each side then runs in its own process (bench/train-gpt2-child.ts and
 * torch_train_gpt2.py train), one warm-up step and `steps` timed steps, alternating sides for
 * `blocks` blocks so drift on the shared machine reaches both. Both sides start from the same
 * weights and take the same steps on the same batch, so their losses step by step must agree:
 * the largest relative difference is printed with the times. A step takes seconds here, so the
 * case runs only when named (`npm run bench -- train-gpt2`). TEARDOWN_GPT2_LAYERS and
 * TEARDOWN_GPT2_VOCAB (torch_train_gpt2.py export) shrink the model to iterate on; the printed
 * `shape` says which ran.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureTorch, median, peerFields, round, torchEnv } from './peer.ts';

interface SideResult {
  times_ms: number[];
  losses: number[];
  cpu_per_wall: number;
  max_rss_mb: number;
  build_max_rss_mb?: number;
  step_rss_mb?: number;
  build_ms?: number;
  parameters?: number;
  torch?: string;
}

const STEPS_PER_BLOCK = 3;
const BLOCKS = 2;

export async function benchTrainGpt2(threads: number): Promise<void> {
  ensureTorch();
  const dir = mkdtempSync(join(tmpdir(), 'teardown-train-gpt2-'));
  const child = (command: string, args: string[], env?: NodeJS.ProcessEnv): SideResult => {
    const result = spawnSync(command, args, { env, encoding: 'utf8', maxBuffer: 1 << 26 });
    if (result.status !== 0)
      throw new Error(`bench: ${args[0]} ${args.slice(1).join(' ')} failed:\n${result.stderr}`);
    return JSON.parse(result.stdout.trim().split('\n').pop() || '{}');
  };
  const python = (args: string[]) =>
    child(
      '/usr/bin/python3',
      [fileURLToPath(new URL('./torch_train_gpt2.py', import.meta.url)), ...args],
      torchEnv(threads),
    );
  const teardown = () =>
    child(process.execPath, [
      '--import',
      'tsx',
      fileURLToPath(new URL('./train-gpt2-child.ts', import.meta.url)),
      dir,
      String(STEPS_PER_BLOCK),
      String(threads),
    ]);
  try {
    const loadBefore = loadavg()[0];
    python(['export', dir]);
    const ours: SideResult[] = [];
    const theirs: SideResult[] = [];
    for (let block = 0; block < BLOCKS; block++) {
      ours.push(teardown());
      theirs.push(python(['train', dir, String(STEPS_PER_BLOCK), String(threads)]));
    }
    const [oursMs, theirsMs] = [
      median(ours.flatMap((r) => r.times_ms)),
      median(theirs.flatMap((r) => r.times_ms)),
    ];
    const lossDifference = Math.max(
      ...ours[0].losses.map(
        (loss, step) => Math.abs(loss - theirs[0].losses[step]) / Math.abs(theirs[0].losses[step]),
      ),
    );
    console.log(
      JSON.stringify({
        case: 'train-gpt2',
        model:
          'GPT-2-small shape (12 layers, d_model 768, 12 heads, vocab 50257, context 128, untied lm_head, random init)',
        shape: JSON.parse(readFileSync(join(dir, 'shape.json'), 'utf8')),
        batch: 8,
        positions: 128,
        optimizer: 'AdamW lr 1e-4, weight decay 0.01',
        threads,
        teardown_ms_per_step: round(oursMs, 0),
        torch_ms_per_step: round(theirsMs, 0),
        ratio: round(theirsMs / oursMs, 2),
        ...peerFields(threads),
        block_ratios: ours.map((side, block) =>
          round(median(theirs[block].times_ms) / median(side.times_ms), 2),
        ),
        blocks: BLOCKS,
        steps_per_block: STEPS_PER_BLOCK,
        teardown_cpu_per_wall: round(median(ours.map((r) => r.cpu_per_wall)), 2),
        torch_cpu_per_wall: round(median(theirs.map((r) => r.cpu_per_wall)), 2),
        teardown_max_rss_mb: Math.max(...ours.map((r) => r.max_rss_mb)),
        torch_max_rss_mb: Math.max(...theirs.map((r) => r.max_rss_mb)),
        teardown_build_max_rss_mb: Math.max(...ours.map((r) => r.build_max_rss_mb!)),
        teardown_step_rss_mb: Math.max(...ours.map((r) => r.step_rss_mb!)),
        teardown_build_ms: ours[0].build_ms,
        teardown_parameters: ours[0].parameters,
        losses: {
          teardown: ours[0].losses.map((loss) => round(loss, 6)),
          torch: theirs[0].losses.map((loss) => round(loss, 6)),
        },
        max_rel_loss_difference: lossDifference,
        load_average_1min: [round(loadBefore, 2), round(loadavg()[0], 2)],
        torch: theirs[0].torch,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
