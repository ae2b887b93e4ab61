/**
 * The losses of the training objectives (objective.ts) that replace the mean cross-entropy,
 * written on its terms by autodiff/loss.ts: logits z [rows, classes], targets y [rows].
 *
 * weighted  Σ wᵢ·(−log softmax(zᵢ)[yᵢ]) / Σ wᵢ, w the input WEIGHT_INPUT [rows]
 *           (group-balanced reweighting, Just-Train-Twice).
 * IRMv1     (Arjovsky et al. 2019) for environments e, one-hot rows of ENVIRONMENT_INPUT [rows, E]:
 *           gₑ = ∂/∂w mean_{i∈e} CE(w·zᵢ, yᵢ) at w = 1
 *              = mean_{i∈e} (Σ_k softmax(zᵢ)_k·z_ik − z_{i,yᵢ}),
 *           loss = (CE + λ·Σₑ gₑ²) / max(1, λ) with λ the input PENALTY_WEIGHT_INPUT, as the
 *           paper's code divides by the penalty weight once it exceeds 1.
 */
import type { ObjectiveLoss } from '../autodiff/loss.ts';
import { int } from '../graph/builder.ts';

export const WEIGHT_INPUT = 'teardown::weight';
export const ENVIRONMENT_INPUT = 'teardown::environment_mask';
export const PENALTY_WEIGHT_INPUT = 'teardown::penalty_weight';

export const weightedCrossEntropy: ObjectiveLoss = {
  describe: 'example weights',
  emit({ op, int64s, logProbabilityOfTargets }) {
    const weights = op('Unsqueeze', [WEIGHT_INPUT, int64s([1])]); // [rows, 1]
    const weightedSum = op('ReduceSum', [op('Mul', [logProbabilityOfTargets(), weights])], {
      keepdims: int(0),
    });
    const crossEntropy = op('Neg', [
      op('Div', [weightedSum, op('ReduceSum', [weights], { keepdims: int(0) })]),
    ]);
    return {
      loss: op('Identity', [crossEntropy], {}, 'loss'),
      inputs: [{ name: WEIGHT_INPUT, dims: ['batch'] }],
    };
  },
};

export function irmV1(environments: number): ObjectiveLoss {
  return {
    describe: 'the IRMv1 penalty',
    emit({ op, int64s, scalar, logits, targets, logProbabilityOfTargets }) {
      const crossEntropy = op('Neg', [
        op('ReduceMean', [logProbabilityOfTargets()], { keepdims: int(0) }),
      ]);
      // sᵢ = Σ_k softmax(zᵢ)_k·z_ik − z_{i,yᵢ}: the derivative of row i's cross-entropy with
      // respect to a scale on its logits
      const probabilities = op('Softmax', [logits], { axis: int(1) });
      const expected = op('ReduceSum', [op('Mul', [probabilities, logits]), int64s([1])], {
        keepdims: int(1),
      });
      const chosen = op('GatherElements', [logits, op('Unsqueeze', [targets, int64s([1])])], {
        axis: int(1),
      });
      const slope = op('Sub', [expected, chosen]); // [rows, 1]
      const slopeSums = op('ReduceSum', [op('Mul', [slope, ENVIRONMENT_INPUT]), int64s([0])], {
        keepdims: int(0),
      });
      const perEnvironment = op('Div', [
        slopeSums,
        op('ReduceSum', [ENVIRONMENT_INPUT, int64s([0])], { keepdims: int(0) }),
      ]); // [E]
      const penalty = op(
        'ReduceSum',
        [op('Mul', [perEnvironment, perEnvironment])],
        { keepdims: int(0) },
        'irm_penalty',
      );
      const total = op('Add', [crossEntropy, op('Mul', [PENALTY_WEIGHT_INPUT, penalty])]);
      const loss = op(
        'Div',
        [total, op('Max', [PENALTY_WEIGHT_INPUT, scalar(1, 'float32')])],
        {},
        'loss',
      );
      const inputs = [
        { name: ENVIRONMENT_INPUT, dims: ['batch', environments] },
        { name: PENALTY_WEIGHT_INPUT, dims: [] },
      ];
      return { loss, inputs };
    },
  };
}
