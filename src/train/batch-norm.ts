/**
 * BatchNormalization in training mode. The saved (inference) graph normalises with running
 * statistics; a training step must normalise with the batch's own, as PyTorch's train() does:
 *   μ = mean over (N, H, W),  σ² = mean of (x − μ)² (biased),  y = (x − μ)/√(σ² + ε)·γ + β.
 * That is ONNX's own BatchNormalization with training_mode = 1: with momentum 0 its outputs 1 and
 * 2 are the batch μ and σ², and autodiff/rules/normalization.ts has its gradient (one op and a short backward
 * instead of ~7 forward and ~13 backward ops written out). The batch μ and σ² leave the step graph
 * as outputs so the trainer can update the running statistics as PyTorch does (momentum m = 0.1):
 *   running_mean ← (1 − m)·running_mean + m·μ,  running_var ← (1 − m)·running_var + m·σ²·n/(n − 1).
 */
import type { Emitter } from '../autodiff/emitter.ts';
import { float, int, makeNode } from '../graph/builder.ts';
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

/**
 * Replaces every BatchNormalization node by its training-mode form; returns the new node list and
 * the statistics to track. (Gradient graphs are built at opset 16 or later, which has training_mode: autodiff/opset.ts.)
 */
export function batchNormForTraining(
  nodes: readonly NodeProto[],
  emitter: Emitter,
  dimsOf: (value: string) => readonly (number | string)[],
): { nodes: NodeProto[]; statistics: BatchStatistics[] } {
  const statistics: BatchStatistics[] = [];
  const out = nodes.map((node) => {
    if (node.opType !== 'BatchNormalization') return node;
    const [x, , , runningMean, runningVar] = node.input;
    const epsilon = node.attribute.find((a) => a.name === 'epsilon')?.f ?? 1e-5;
    const [batchMean, batchVar] = [
      emitter.fresh(`${node.name}/batch_mean`),
      emitter.fresh(`${node.name}/batch_var`),
    ];
    statistics.push({
      runningMean,
      runningVar,
      batchMean,
      batchVar,
      perExample: dimsOf(x)
        .slice(2)
        .map(Number)
        .reduce((a, b) => a * b, 1),
    });
    return makeNode(
      node.name,
      'BatchNormalization',
      node.input,
      [node.output[0], batchMean, batchVar],
      { epsilon: float(epsilon), momentum: float(0), training_mode: int(1) },
    );
  });
  return { nodes: out, statistics };
}

/** PyTorch's running-statistics update (momentum 0.1, unbiased variance), in place. */
export function updateRunningStatistics(
  running: { mean: Tensor; var: Tensor },
  batchMean: Tensor,
  batchVar: Tensor,
  count: number,
  momentum = 0.1,
): void {
  const unbias = count > 1 ? count / (count - 1) : 1;
  const mean = running.mean.data as Float32Array;
  const variance = running.var.data as Float32Array;
  for (let c = 0; c < mean.length; c++) {
    mean[c] = (1 - momentum) * mean[c] + momentum * Number(batchMean.data[c]);
    variance[c] = (1 - momentum) * variance[c] + momentum * Number(batchVar.data[c]) * unbias;
  }
}
