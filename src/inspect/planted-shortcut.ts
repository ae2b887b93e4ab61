/**
 * A backprop network with a planted shortcut, for tests of the carrier search: one hidden unit
 * carries a binary attribute and decides the prediction alone, so every answer is known in
 * closed form.
 *
 *   input [batch, 3] = (a, s, z)  a ∈ {0,1} the attribute, s ∈ {0,1} a weaker signal, z noise
 *   fc → act (Relu) [batch, 10]:  act#0 = a, act#1 = s, act#2…#9 = z (distractors)
 *   head → logits [batch, 2]:     logit₀ = 1.5, logit₁ = 2·act#0 + act#1
 *
 * The model predicts class a (2a + s > 1.5 ⇔ a = 1), so flipping a flips every prediction. With
 * act#0 mean-ablated to m = mean(a) = ½, logit₁ = 1 + s and the prediction is s: no flip is left.
 * Ablating any other unit leaves the prediction a. The attribute's direction in act is e₀.
 */
import { GraphBuilder, int } from '../graph/builder.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { seededRandom } from '../random.ts';
import { tensor, type Tensor } from '../tensor.ts';

export const SHORTCUT_WIDTH = 10;
/** The unit that carries the attribute. */
export const SHORTCUT_UNIT = 0;

export function plantedShortcutModel(): ModelProto {
  const hiddenWeight = Array.from({ length: SHORTCUT_WIDTH * 3 }, (_, k) => {
    const [unit, feature] = [Math.floor(k / 3), k % 3];
    return unit === feature || (unit >= 2 && feature === 2) ? 1 : 0;
  }); // [10, 3], row j: the weights of unit j
  const headWeight = Array.from({ length: 2 * SHORTCUT_WIDTH }, (_, k) =>
    k === SHORTCUT_WIDTH ? 2 : k === SHORTCUT_WIDTH + 1 ? 1 : 0,
  ); // [2, 10]
  const g = new GraphBuilder('planted-shortcut', 17);
  const x = g.input('input', 'float32', ['batch', 3]);
  const fc = g.node(
    'Gemm',
    [x, g.initializer('fc.weight', tensor('float32', [SHORTCUT_WIDTH, 3], hiddenWeight))],
    { transB: int(1) },
    '/fc/Gemm',
  );
  const act = g.node('Relu', [fc], {}, '/act/Relu');
  const head = [
    g.initializer('head.weight', tensor('float32', [2, SHORTCUT_WIDTH], headWeight)),
    g.initializer('head.bias', tensor('float32', [2], [1.5, 0])),
  ];
  g.output(g.node('Gemm', [act, ...head], { transB: int(1) }, '/head/Gemm', 'logits'), 'float32');
  return g.build();
}

/** `n` examples (n even): a alternates 0, 1; s alternates in pairs; z uniform. So mean(a) = ½. */
export function plantedShortcutExamples(
  n: number,
  seed = 0,
): { original: Tensor; flipped: Tensor } {
  const random = seededRandom(seed);
  const rows = Array.from({ length: n }, (_, i) => [i % 2, Math.floor(i / 2) % 2, random()]);
  return {
    original: tensor('float32', [n, 3], rows.flat()),
    flipped: tensor(
      'float32',
      [n, 3],
      rows.flatMap(([a, s, z]) => [1 - a, s, z]),
    ),
  };
}
