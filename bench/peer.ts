/**
 * What every bench shares: medians, timing, and the PyTorch peer — its fastest correct OpenBLAS
 * kernel, its environment at a thread count, and the server protocol the side-by-side cases use.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '../src/random.ts';
import { tensor, type Tensor } from '../src/tensor.ts';

/** The median; of an even count, the mean of the two middle values (the upper one alone read 3.29x for block ratios 3.29 and 2.00). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
export const round = (value: number, digits = 3) => Number(value.toFixed(digits));

/** Wall times of `reps` runs, and the process's CPU time ÷ wall time over them (≈ the cores it kept busy). */
export async function timeIt(
  reps: number,
  body: () => Promise<unknown>,
): Promise<{ times: number[]; cpuPerWall: number }> {
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

export function randomTokens(seed: number, dims: number[], vocab: number): Tensor {
  const random = seededRandom(seed);
  return tensor(
    'int64',
    dims,
    Array.from({ length: dims[0] * dims[1] }, () => Math.floor(random() * vocab)),
  );
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
export function torchEnv(threadCount: number): NodeJS.ProcessEnv {
  return blasEnv(threadCount, peerBlas(threadCount).coretype);
}

function blasEnv(threadCount: number, coretype: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OPENBLAS_NUM_THREADS: String(threadCount),
    OMP_NUM_THREADS: String(threadCount),
  };
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
    const probe = spawnSync(
      '/usr/bin/python3',
      [fileURLToPath(new URL('./blas_probe.py', import.meta.url))],
      { env: blasEnv(threadCount, coretype), encoding: 'utf8' },
    );
    if (probe.status !== 0) {
      candidates[coretype] = `failed (exit ${probe.status ?? probe.signal})`;
      continue;
    }
    const { gflops, max_rel_error: error } = JSON.parse(probe.stdout) as {
      gflops: number;
      max_rel_error: number;
    };
    if (!(error < 1e-4)) {
      candidates[coretype] = `wrong product (max relative error ${error})`;
      continue;
    }
    candidates[coretype] = round(gflops, 1);
    if (!best || gflops > best.gflops) best = { coretype, gflops: round(gflops, 1), candidates };
  }
  if (!best)
    throw new Error(
      `bench: no OpenBLAS core type gave PyTorch a correct 512³ product at ${threadCount} thread(s): ${JSON.stringify(candidates)}`,
    );
  console.error(
    `bench: PyTorch peer at ${threadCount} thread(s): OPENBLAS_CORETYPE=${best.coretype} (512³ matmul GFLOP/s by core type: ${JSON.stringify(candidates)})`,
  );
  peerBlasByThreads.set(threadCount, best);
  return best;
}

/** The peer's kernel, printed next to every ratio so that a crippled peer is visible. */
export function peerFields(threadCount: number): {
  peer_matmul_gflops: number;
  peer_coretype: string;
} {
  const blas = peerBlas(threadCount);
  return { peer_matmul_gflops: blas.gflops, peer_coretype: blas.coretype };
}

export function ensureTorch(): void {
  const hasTorch =
    spawnSync('/usr/bin/python3', ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
  const blas =
    spawnSync('update-alternatives', ['--query', 'libblas.so.3-x86_64-linux-gnu'], {
      encoding: 'utf8',
    }).stdout ?? '';
  const hasOpenBlas = /Value: .*openblas/.test(blas);
  if (hasTorch && hasOpenBlas) return;
  console.error(
    'bench: installing Debian python3-torch and libopenblas0-pthread (the PyTorch side of the comparison)...',
  );
  const install = spawnSync(
    'sh',
    [
      '-c',
      'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch libopenblas0-pthread',
    ],
    { stdio: 'inherit' },
  );
  if (install.status !== 0)
    throw new Error(
      'bench: could not install python3-torch and libopenblas0-pthread with apt-get (run as root, or install them yourself).',
    );
}

/**
 * A PyTorch side as a server (bench/torch_*.py): it prints one JSON line when ready, then for each
 * line with a count it runs that many timed repetitions and prints their milliseconds.
 */
export class TorchPeer {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    readonly ready: Record<string, unknown> & { torch: string },
  ) {}

  static async start(script: string, args: string[], threadCount: number): Promise<TorchPeer> {
    const child = spawn(
      '/usr/bin/python3',
      [fileURLToPath(new URL(script, import.meta.url)), ...args, '--threads', String(threadCount)],
      { env: torchEnv(threadCount) },
    );
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
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
export async function alternate(
  blocks: number,
  ours: { call: () => Promise<unknown>; calls: number; unitsPerCall: number },
  peer: TorchPeer,
  peerUnits: number,
): Promise<{
  ours: number[];
  theirs: number[];
  blockRatios: number[];
  cpu: { ours: number; theirs: number };
}> {
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
  for (let start = 0; start + size <= values.length; start += size)
    means.push(values.slice(start, start + size).reduce((a, b) => a + b, 0) / size);
  return means;
}
