/**
 * A decoder-only transformer with PyTorch-style module names (as the gpt fixture's TinyGPT):
 * embed, pos, blocks.<i>.{ln1, attn.{qkv, softmax, proj}, ln2, mlp.{0, 1, 2}}, ln_f, unembed.
 * Causal attention; LayerNorm optional (ln=false for the grokking model of Nanda et al. 2023).
 */
import { float, GraphBuilder, int, ints } from '../graph/builder.ts';
import { tensor } from '../tensor.ts';
import { InputError } from '../errors.ts';
import { activation, type BuiltModel, type InputShape } from './builders.ts';
import { Initializer } from './init.ts';
import type { ModelSpec } from './model-spec.ts';

type TransformerSpec = Extract<ModelSpec, { kind: 'transformer' }>;

export function buildTransformer(
  spec: TransformerSpec,
  input: InputShape,
  classes: number,
  init: Initializer,
): BuiltModel {
  if (input.kind !== 'tokens')
    throw new InputError(
      `A transformer needs token sequences; this task gives ${input.kind} inputs.`,
    );
  const { dModel: d, heads, dMlp, layers } = spec;
  const headSize = d / heads;
  const seq = input.length;
  const g = new GraphBuilder('transformer');
  const weights = new Weights(g, init, spec, d, classes);
  const tokens = g.input('input', 'int64', ['batch', seq]);

  const embedded = g.node(
    'Gather',
    [weights.embedding('embed.weight', [input.vocab, d]), tokens],
    { axis: int(0) },
    '/embed/Gather',
  ); // [batch, seq, d]
  let x = g.node('Add', [embedded, weights.embedding('pos', [seq, d])], {}, '/Add'); // [batch, seq, d]
  // Causal mask: −10⁹ above the diagonal, added to the attention scores.
  const mask = g.initializer(
    'teardown.causal_mask',
    tensor(
      'float32',
      [seq, seq],
      Array.from({ length: seq * seq }, (_, k) => (k % seq > Math.floor(k / seq) ? -1e9 : 0)),
    ),
  );

  for (let layer = 0; layer < layers; layer++) {
    const block = `blocks.${layer}`;
    const scope = `/blocks/${block}`;
    const attnIn = spec.layerNorm ? layerNorm(g, weights, `${block}.ln1`, `${scope}/ln1`, x, d) : x;
    const qkv = weights.linear3d(`${block}.attn.qkv`, `${scope}/attn/qkv`, attnIn, d, 3 * d); // [batch, seq, 3d]
    const [q, k, v] = g.nodeN(
      'Split',
      [qkv, g.initializer(`${block}.attn.split_sizes`, tensor('int64', [3], [d, d, d]))],
      { axis: int(-1) },
      `${scope}/attn/Split`,
      3,
    );
    const perHead = (value: string, name: string) =>
      g.node(
        'Transpose',
        [
          g.node(
            'Reshape',
            [
              value,
              g.initializer(
                `${block}.attn.${name}_shape`,
                tensor('int64', [4], [0, 0, heads, headSize]),
              ),
            ],
            {},
            `${scope}/attn/Reshape`,
          ),
        ],
        { perm: ints([0, 2, 1, 3]) },
        `${scope}/attn/Transpose`,
      ); // [batch, heads, seq, headSize]
    const [qh, kh, vh] = [perHead(q, 'q'), perHead(k, 'k'), perHead(v, 'v')];
    const scores = g.node(
      'Div',
      [
        g.node(
          'MatMul',
          [qh, g.node('Transpose', [kh], { perm: ints([0, 1, 3, 2]) }, `${scope}/attn/Transpose`)],
          {},
          `${scope}/attn/MatMul`,
        ),
        scalar(g, `${block}.attn.scale`, Math.sqrt(headSize)),
      ],
      {},
      `${scope}/attn/Div`,
    ); // [batch, heads, seq, seq]
    const pattern = g.node(
      'Softmax',
      [g.node('Add', [scores, mask], {}, `${scope}/attn/Add`)],
      { axis: int(-1) },
      `${scope}/attn/softmax/Softmax`,
    );
    const mixed = g.node(
      'Transpose',
      [g.node('MatMul', [pattern, vh], {}, `${scope}/attn/MatMul_1`)],
      { perm: ints([0, 2, 1, 3]) },
      `${scope}/attn/Transpose`,
    ); // [batch, seq, heads, headSize]
    const merged = g.node(
      'Reshape',
      [mixed, g.initializer(`${block}.attn.merge_shape`, tensor('int64', [3], [0, 0, d]))],
      {},
      `${scope}/attn/Reshape`,
    ); // [batch, seq, d]
    x = g.node(
      'Add',
      [x, weights.linear3d(`${block}.attn.proj`, `${scope}/attn/proj`, merged, d, d)],
      {},
      `${scope}/Add`,
    );
    const mlpIn = spec.layerNorm ? layerNorm(g, weights, `${block}.ln2`, `${scope}/ln2`, x, d) : x;
    const hidden = activation(
      g,
      `blocks/${block}/mlp/mlp.1`,
      weights.linear3d(`${block}.mlp.0`, `${scope}/mlp/mlp.0`, mlpIn, d, dMlp),
      spec.act,
    ); // [batch, seq, d_mlp]
    x = g.node(
      'Add',
      [x, weights.linear3d(`${block}.mlp.2`, `${scope}/mlp/mlp.2`, hidden, dMlp, d)],
      {},
      `${scope}/Add_1`,
    );
  }
  if (spec.layerNorm) x = layerNorm(g, weights, 'ln_f', '/ln_f', x, d);
  const logits = weights.linear3d('unembed', '/unembed', x, d, classes, 'logits'); // [batch, seq, classes]
  g.output(logits, 'float32');
  return { proto: g.build(), inputName: 'input', outputName: logits };
}

function scalar(g: GraphBuilder, name: string, value: number): string {
  return g.initializer(name, tensor('float32', [], [value]));
}

function layerNorm(
  g: GraphBuilder,
  weights: Weights,
  module: string,
  scope: string,
  x: string,
  d: number,
): string {
  return g.node(
    'LayerNormalization',
    [x, weights.constant(`${module}.weight`, [d], 1), weights.constant(`${module}.bias`, [d], 0)],
    { axis: int(-1), epsilon: float(1e-5) },
    `${scope}/LayerNormalization`,
  );
}

/** Parameters under either initialisation scheme. */
class Weights {
  constructor(
    private readonly g: GraphBuilder,
    private readonly init: Initializer,
    private readonly spec: TransformerSpec,
    private readonly d: number,
    private readonly classes: number,
  ) {}

  embedding(name: string, dims: number[]): string {
    const std = this.spec.init === 'nanda' ? 1 / Math.sqrt(this.d) : 1; // nn.Embedding: N(0, 1)
    return this.g.initializer(name, this.init.normalTensor(dims, std));
  }

  constant(name: string, dims: number[], value: number): string {
    return this.g.initializer(name, this.init.constantTensor(dims, value));
  }

  /** nn.Linear on [batch, seq, in]: MatMul(x, Wᵀ) + b, as PyTorch's exporter writes it. */
  linear3d(
    module: string,
    scope: string,
    x: string,
    inFeatures: number,
    outFeatures: number,
    outputName?: string,
  ): string {
    let weight;
    let bias;
    if (this.spec.init === 'nanda') {
      weight = this.init.normalTensor(
        [outFeatures, inFeatures],
        module === 'unembed' ? 1 / Math.sqrt(this.classes) : 1 / Math.sqrt(this.d),
      );
      bias = this.init.constantTensor([outFeatures], 0);
    } else ({ weight, bias } = this.init.linear([outFeatures, inFeatures]));
    const transposed = this.g.node(
      'Transpose',
      [this.g.initializer(`${module}.weight`, weight)],
      { perm: ints([1, 0]) },
      `${scope}/Transpose`,
    );
    const product = this.g.node('MatMul', [x, transposed], {}, `${scope}/MatMul`);
    return this.g.node(
      'Add',
      [this.g.initializer(`${module}.bias`, bias), product],
      {},
      `${scope}/Add`,
      outputName,
    );
  }
}
