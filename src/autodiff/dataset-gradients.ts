/**
 * Gradients of a loss averaged over a whole dataset, streamed in batches: the dataset loss is
 * L = Σ_b (n_b/N)·L_b over batches b with n_b scored targets of N (targets equal to the ignore
 * index are not scored), so parameter (and hook-free) gradients are the same weighted sums, and
 * each example's input or hook gradient is its batch's scaled by n_b/N (zero in a batch with none).
 * Per-example gradients (inputs, hooks) stream into .npy files; parameter gradients are summed.
 */
import { escapeFileName, StagedFolder } from '../files.ts';
import { NpyFile, NpyWriter, encodeNpy } from '../data/npy.ts';
import { InputError } from '../errors.ts';
import type { Model } from '../runtime/model.ts';
import { Progress } from '../report/progress.ts';
import { map } from '../tensor-math.ts';
import type { Tensor } from '../tensor.ts';
import { GradientProgram, type GradientRequest } from './gradients.ts';

export interface DatasetGradientSummary {
  examples: number;
  loss: number;
  gradients: Record<string, { file: string; shape: number[]; dtype: string; kind: 'parameter' | 'per-example' }>;
}

export async function datasetGradients(model: Model, inputs: Record<string, NpyFile>, target: NpyFile, request: GradientRequest, options: { batchSize?: number; out: string; progress?: boolean }): Promise<DatasetGradientSummary> {
  const examples = target.rows;
  for (const [name, file] of Object.entries(inputs)) {
    if (file.rows !== examples) throw new InputError(`Input '${name}' has ${file.rows} examples but the target has ${examples}: give one target row per example.`);
  }
  const batchSize = options.batchSize ?? examples;
  const ignored = request.loss.kind === 'cross-entropy' ? request.loss.ignoreIndex : undefined;
  const scored = (targets: Tensor) => (ignored === undefined ? targets.data.length : Array.from(targets.data as ArrayLike<number | bigint>).filter((value) => Number(value) !== ignored).length);
  let totalScored = 0;
  for (let start = 0; start < examples; start += batchSize) totalScored += scored(target.readRows(start, Math.min(examples, start + batchSize)));
  if (totalScored === 0) throw new InputError(`Every target in '${target.path}' is the ignore index (${ignored}): there is no loss to differentiate.`);
  const read = (start: number, end: number) => Object.fromEntries(Object.entries(inputs).map(([name, file]) => [name, file.readRows(start, end)]));
  const firstEnd = Math.min(batchSize, examples);
  const program = await GradientProgram.build(model, read(0, firstEnd), target.readRows(0, firstEnd), request);
  const folder = new StagedFolder(options.out);
  const writers = new Map<string, { writer: NpyWriter; dtype: string }>();
  const sums = new Map<string, Tensor>();
  const perExample = new Set(program.perExampleNames());
  const progress = new Progress('grad', Math.ceil(examples / batchSize), options.progress);
  let loss = 0;
  try {
    for (let start = 0; start < examples; start += batchSize) {
      const end = Math.min(examples, start + batchSize);
      const batchTargets = target.readRows(start, end);
      const weight = scored(batchTargets) / totalScored;
      const result = await program.run(read(start, end), batchTargets, start);
      if (weight > 0) loss += weight * result.loss;
      for (const [name, gradient] of result.gradients) {
        // A batch whose every target is ignored has a 0/0 loss: its gradients count as zero.
        const scaled = weight === 1 ? gradient : map(gradient, (value) => (weight === 0 ? 0 : value * weight));
        if (perExample.has(name)) {
          if (!writers.has(name)) writers.set(name, { writer: new NpyWriter(folder.pathOf(`${escapeFileName(name)}.npy`)), dtype: scaled.dtype });
          writers.get(name)!.writer.append(scaled);
        } else {
          const sum = sums.get(name);
          sums.set(name, sum ? { ...sum, data: (sum.data as Float32Array).map((value, i) => value + Number(scaled.data[i])) } : scaled);
        }
      }
      progress.tick();
    }
    progress.finish();
    const gradients: DatasetGradientSummary['gradients'] = {};
    for (const [name, { writer, dtype }] of writers) {
      writer.close();
      gradients[name] = { file: `${escapeFileName(name)}.npy`, shape: [examples, ...program.gradientShape(name).slice(1).map(Number)], dtype, kind: 'per-example' };
    }
    for (const [name, sum] of sums) {
      folder.write(`${escapeFileName(name)}.npy`, encodeNpy(sum));
      gradients[name] = { file: `${escapeFileName(name)}.npy`, shape: sum.dims, dtype: sum.dtype, kind: 'parameter' };
    }
    folder.write('index.json', `${JSON.stringify({ examples, loss, gradients }, null, 2)}\n`);
    folder.commit();
    return { examples, loss, gradients };
  } catch (error) {
    for (const { writer } of writers.values()) writer.abandon();
    folder.abandon();
    throw error;
  } finally {
    await program.release();
  }
}
