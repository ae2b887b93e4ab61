/**
 * Gradients of a loss averaged over a whole dataset, streamed in batches: the dataset loss is
 * L = Σ_b (n_b/N)·L_b over batches b with n_b scored terms of N — cross-entropy: target positions
 * (only the last of each sequence with positions 'last'; targets equal to the ignore index are
 * not scored); mse: elements — so parameter (and hook-free) gradients are the same weighted sums,
 * and each example's input or hook gradient is its batch's scaled by n_b/N (zero in a batch with
 * none). Per-example gradients (inputs, hooks) stream into .npy files; parameter gradients are summed.
 */
import { escapeFileName, StagedFolder } from '../files.ts';
import { NpyFile, NpyWriter, encodeNpy } from '../data/npy.ts';
import { requireRows } from '../data/validate.ts';
import { InputError } from '../errors.ts';
import type { Model } from '../runtime/model.ts';
import { trackProgress, type ProgressOptions } from '../progress.ts';
import { map } from '../tensor-math.ts';
import type { Feeds, Tensor } from '../tensor.ts';
import { GradientProgram, modelFeeds, type GradientRequest } from './gradients.ts';
import { normalizedOutput, type LossSpec, type NormalizedOutput } from './loss.ts';
import { probeHookShapes } from '../runtime/probe.ts';

export interface DatasetGradientSummary {
  examples: number;
  loss: number;
  /** What the loss's mean is over: cross-entropy's scored target positions (and those left out as the ignore index), or mse's elements. */
  meanOver: { count: number; unit: 'positions' | 'elements'; ignored: number };
  /** The output scored, and for cross-entropy on a Softmax/LogSoftmax output, the logits it is taken on instead. */
  scored: { output: string; logitsBefore?: NormalizedOutput };
  gradients: Record<
    string,
    { file: string; shape: number[]; dtype: string; kind: 'parameter' | 'per-example' }
  >;
}

export async function datasetGradients(
  model: Model,
  inputs: Record<string, NpyFile>,
  target: NpyFile,
  request: GradientRequest,
  options: { batchSize?: number; out: string } & ProgressOptions,
): Promise<DatasetGradientSummary> {
  const examples = target.rows;
  requireRows(examples, `The target file '${target.path}'`);
  for (const [name, file] of Object.entries(inputs)) {
    if (file.rows !== examples)
      throw new InputError(
        `Input '${name}' has ${file.rows} examples but the target has ${examples}: give one target row per example.`,
      );
  }
  const batchSize = options.batchSize ?? examples;
  const scored = (targets: Tensor) => scoredTerms(targets, request.loss);
  const { scored: totalScored, targets: totalTargets } = datasetTerms(
    target,
    batchSize,
    request.loss,
  );
  if (totalScored === 0)
    throw new InputError(
      `Every target in '${target.path}' is the ignore index (${request.loss.ignoreIndex}): there is no loss to differentiate.`,
    );
  const read = (start: number, end: number) =>
    Object.fromEntries(
      Object.entries(inputs).map(([name, file]) => [name, file.readRows(start, end)]),
    );
  const firstEnd = Math.min(batchSize, examples);
  const program = await GradientProgram.build(
    model,
    read(0, firstEnd),
    target.readRows(0, firstEnd),
    request,
  );
  const scoredOutput = await scoredOutputOf(model, read(0, firstEnd), request.loss);
  const meanOver = {
    count: totalScored,
    unit: request.loss.kind === 'mse' ? ('elements' as const) : ('positions' as const),
    ignored: totalTargets - totalScored,
  };
  const folder = new StagedFolder(options.out);
  const writers = new Map<string, { writer: NpyWriter; dtype: string }>();
  const sums = new Map<string, Tensor>();
  const perExample = new Set(program.perExampleNames());
  const progress = trackProgress('grad', examples, options); // ticks in examples
  let loss = 0;
  try {
    for (let start = 0; start < examples; start += batchSize) {
      const end = Math.min(examples, start + batchSize);
      const batchTargets = target.readRows(start, end);
      const weight = scored(batchTargets).scored / totalScored;
      const result = await program.run(read(start, end), batchTargets, start, target.path);
      if (weight > 0) loss += weight * result.loss;
      for (const [name, gradient] of result.gradients) {
        // A batch whose every target is ignored has a 0/0 loss: its gradients count as zero.
        const scaled =
          weight === 1 ? gradient : map(gradient, (value) => (weight === 0 ? 0 : value * weight));
        if (perExample.has(name)) {
          if (!writers.has(name))
            writers.set(name, {
              writer: new NpyWriter(folder.pathOf(`${escapeFileName(name)}.npy`)),
              dtype: scaled.dtype,
            });
          writers.get(name)!.writer.append(scaled);
        } else {
          const sum = sums.get(name);
          sums.set(
            name,
            sum
              ? {
                  ...sum,
                  data: (sum.data as Float32Array).map(
                    (value, i) => value + Number(scaled.data[i]),
                  ),
                }
              : scaled,
          );
        }
      }
      progress.tick(end - start);
    }
    progress.finish();
    const gradients: DatasetGradientSummary['gradients'] = {};
    for (const [name, { writer, dtype }] of writers) {
      writer.close();
      gradients[name] = {
        file: `${escapeFileName(name)}.npy`,
        shape: [examples, ...program.gradientShape(name).slice(1).map(Number)],
        dtype,
        kind: 'per-example',
      };
    }
    for (const [name, sum] of sums) {
      folder.write(`${escapeFileName(name)}.npy`, encodeNpy(sum));
      gradients[name] = {
        file: `${escapeFileName(name)}.npy`,
        shape: sum.dims,
        dtype: sum.dtype,
        kind: 'parameter',
      };
    }
    const summary = { examples, loss, meanOver, scored: scoredOutput, gradients };
    folder.write('index.json', `${JSON.stringify(summary, null, 2)}\n`);
    folder.commit();
    return summary;
  } catch (error) {
    for (const { writer } of writers.values()) writer.abandon();
    folder.abandon();
    throw error;
  } finally {
    await program.release();
  }
}

/**
 * The terms a batch's loss is the mean of, and the targets given: cross-entropy scores each target
 * position not equal to the ignore index (with positions 'last', each row's last target only; a
 * target [batch] or [batch, seq] alike); mse every element.
 */
function scoredTerms(targets: Tensor, loss: LossSpec): { scored: number; targets: number } {
  if (loss.kind !== 'cross-entropy')
    return { scored: targets.data.length, targets: targets.data.length };
  const rows = targets.dims[0] ?? 1;
  const perRow = rows === 0 ? 0 : targets.data.length / rows;
  const values = Array.from(targets.data as ArrayLike<number | bigint>, Number);
  const read =
    loss.positions === 'last'
      ? Array.from({ length: rows }, (_, row) => values[row * perRow + perRow - 1])
      : values;
  return {
    scored: read.filter((value) => value !== loss.ignoreIndex).length,
    targets: read.length,
  };
}

/** scoredTerms over the whole target file, read batch by batch. */
function datasetTerms(
  target: NpyFile,
  batchSize: number,
  loss: LossSpec,
): { scored: number; targets: number } {
  const total = { scored: 0, targets: 0 };
  for (let start = 0; start < target.rows; start += batchSize) {
    const counts = scoredTerms(
      target.readRows(start, Math.min(target.rows, start + batchSize)),
      loss,
    );
    total.scored += counts.scored;
    total.targets += counts.targets;
  }
  return total;
}

/** The output the loss scores, and the Softmax/LogSoftmax before it whose logits cross-entropy takes instead (loss.ts). */
async function scoredOutputOf(
  model: Model,
  feeds: Feeds,
  loss: LossSpec,
): Promise<DatasetGradientSummary['scored']> {
  const output = loss.output ?? model.outputNames[0];
  if (loss.kind !== 'cross-entropy') return { output };
  // The shape GradientProgram.build probed (probeHookShapes remembers it per model and input shape).
  const shape = (
    await probeHookShapes(model, modelFeeds(model, feeds), [model.hooks.resolve(output)])
  ).get(output)!;
  const logitsBefore = normalizedOutput(model.graph, output, shape.length);
  return logitsBefore ? { output, logitsBefore } : { output };
}
