/**
 * BatchNormalization in training mode. The saved (inference) graph normalises with running
 * statistics; a training step must normalise with the batch's own, as PyTorch's train() does:
 *   μ = mean over (N, H, W),  σ² = mean of (x − μ)² (biased),  y = (x − μ)/√(σ² + ε)·γ + β,
 * written out in differentiable ops. The batch μ and σ² leave the step graph as outputs so the
 * trainer can update the running statistics as PyTorch does (momentum m = 0.1):
 *   running_mean ← (1 − m)·running_mean + m·μ,  running_var ← (1 − m)·running_var + m·σ²·n/(n − 1).
 */
import type { Emitter } from '../autodiff/emitter.ts';
import { int, ints } from '../graph/builder.ts';
import type { NodeProto } from '../onnx/proto.ts';
import type { Tensor } from '../tensor.ts';

export interface BatchStatistics {
  runningMean: string;
  runningVar: string;
  /** Step-graph outputs: the batch mean and (biased) variance, [C]. */
  batchMean: string;
  batchVar: string;
  /** Values averaged per channel for one example (H·W): n = batch·this. */
  perExample: number;
}

/** Replaces every BatchNormalization node by batch-statistics ops; returns the new node list and the statistics to track. */
export function batchNormForTraining(nodes: readonly NodeProto[], emitter: Emitter, dimsOf: (value: string) => readonly (number | string)[], opset: number): { nodes: NodeProto[]; statistics: BatchStatistics[] } {
  const statistics: BatchStatistics[] = [];
  const out: NodeProto[] = [];
  for (const node of nodes) {
    if (node.opType !== 'BatchNormalization') { out.push(node); continue; }
    const [x, scale, bias, runningMean, runningVar] = node.input;
    const epsilon = node.attribute.find((a) => a.name === 'epsilon')?.f ?? 1e-5;
    const dims = dimsOf(x);
    const rank = dims.length;
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, k) => k + 2)];
    const hint = `${node.name}/train`;
    const start = emitter.nodes.length;
    // ReduceMean takes its axes as an attribute before opset 18 and as an input from 18 on.
    const reduceMean = (value: string) => (opset >= 18
      ? emitter.op('ReduceMean', [value, emitter.int64s(axes)], { keepdims: int(1) }, hint)
      : emitter.op('ReduceMean', [value], { axes: ints(axes), keepdims: int(1) }, hint));
    const mean = reduceMean(x); // [1, C, 1, 1]
    const centred = emitter.op('Sub', [x, mean], {}, hint);
    const variance = reduceMean(emitter.op('Mul', [centred, centred], {}, hint));
    const perChannel = (value: string) => emitter.op('Reshape', [value, emitter.int64s([1, -1, ...Array(rank - 2).fill(1)])], {}, hint);
    const normalised = emitter.op('Div', [centred, emitter.op('Sqrt', [emitter.op('Add', [variance, emitter.scalar(epsilon, 'float32')], {}, hint)], {}, hint)], {}, hint);
    emitter.opN('Add', [emitter.op('Mul', [normalised, perChannel(scale)], {}, hint), perChannel(bias)], {}, hint, 1, [node.output[0]]); // writes the BatchNorm's own output name
    // The ops just emitted take the BatchNormalization's place in graph order.
    out.push(...emitter.nodes.splice(start));
    const flat = (value: string) => emitter.op('Reshape', [value, emitter.int64s([-1])], {}, hint);
    statistics.push({ runningMean, runningVar, batchMean: flat(mean), batchVar: flat(variance), perExample: dims.slice(2).map(Number).reduce((a, b) => a * b, 1) });
  }
  return { nodes: out, statistics };
}

/** PyTorch's running-statistics update (momentum 0.1, unbiased variance), in place. */
export function updateRunningStatistics(running: { mean: Tensor; var: Tensor }, batchMean: Tensor, batchVar: Tensor, count: number, momentum = 0.1): void {
  const unbias = count > 1 ? count / (count - 1) : 1;
  const mean = running.mean.data as Float32Array;
  const variance = running.var.data as Float32Array;
  for (let c = 0; c < mean.length; c++) {
    mean[c] = (1 - momentum) * mean[c] + momentum * Number(batchMean.data[c]);
    variance[c] = (1 - momentum) * variance[c] + momentum * Number(batchVar.data[c]) * unbias;
  }
}
