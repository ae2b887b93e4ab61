/**
 * The LSTM classifier case of `npm run bench -- train`: teardown's `lstm:hidden=128` reading
 * 28×28 images row by row (28 steps of 28 features, the last states to a 10-class head), batch 64,
 * AdamW; the peer is PyTorch's fused nn.LSTM on the same shapes (bench/torch_train.py --case lstm).
 */
import type { Tensor } from '../src/tensor.ts';
import { buildModel } from '../src/train/builders.ts';
import { parseModelSpec } from '../src/train/model-spec.ts';
import type { OptimizerSpec } from '../src/train/optimizers.ts';

export function lstmTrainCase(
  floats: (dims: number[]) => Tensor,
  classes: (n: number, count: number) => Tensor,
  adamw: OptimizerSpec,
) {
  return {
    name: 'lstm',
    block: 48,
    proto: () =>
      buildModel(
        parseModelSpec('lstm:hidden=128'),
        { kind: 'image', channels: 1, height: 28, width: 28 },
        10,
        0,
      ).proto,
    input: floats([64, 1, 28, 28]),
    target: classes(64, 10),
    optimizer: adamw,
    lr: 1e-3,
    positions: 'all' as const,
  };
}
