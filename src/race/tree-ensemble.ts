/**
 * YDF's trees (race/ydf-trees.ts) as an ONNX graph that onnxruntime runs. ONNX-ML's
 * TreeEnsembleRegressor sums, for each of YDF's labels, the leaves a row reaches; then
 *   boosted trees: p = softmax(initial + Σ leaves); with two labels YDF grows one tree an
 *     iteration for the second label's score s, and softmax([0, s]) = [1 − σ(s), σ(s)];
 *   random forest: p = Σ votes / trees, each leaf voting 1/trees for its class.
 * A MatMul by a 0/1 matrix [labels, classes] then puts each label's probability in its class's
 * column (classes absent from the training rows get 0). The regressor rather than
 * TreeEnsembleClassifier: onnxruntime scores a classifier of two labels by its own binary rule
 * (neither [1 − p, p] nor with its base values), which the regressor's sums avoid.
 */
import { GraphBuilder, floats, int, ints } from '../graph/builder.ts';
import { AttributeType, type AttributeProto, type ModelProto } from '../onnx/proto.ts';
import { tensor } from '../tensor.ts';
import type { YdfTrees } from './ydf-trees.ts';

const ML_DOMAIN = 'ai.onnx.ml';

export function treeEnsembleModel(
  forest: YdfTrees,
  labelClasses: readonly number[],
  classes: number,
  features: number,
): ModelProto {
  const labels = labelClasses.length;
  const g = new GraphBuilder('trees');
  const input = g.input('input', 'float32', ['batch', features]);
  const ensemble = ensembleAttributes(forest, labels);
  // [batch, labels]
  const sums = g.node('TreeEnsembleRegressor', [input], ensemble.numeric, '/trees/Ensemble');
  const scores =
    forest.learner === 'boosted trees'
      ? g.node('Softmax', [sums], { axis: int(1) }, '/trees/Softmax')
      : sums;
  const placement = new Float32Array(labels * classes); // [labels, classes]
  labelClasses.forEach((label, k) => (placement[k * classes + label] = 1));
  const columns = g.initializer('label_columns', tensor('float32', [labels, classes], placement));
  g.node('MatMul', [scores, columns], {}, '/trees/Place', 'probabilities'); // [batch, classes]
  g.output('probabilities', 'float32', ['batch', classes]);
  const model = g.build();
  const node = model.graph.node.find((n) => n.name === '/trees/Ensemble')!;
  node.domain = ML_DOMAIN;
  node.attribute.push(...ensemble.strings);
  model.opsetImport.push({ domain: ML_DOMAIN, version: 3 } as ModelProto['opsetImport'][number]);
  return model;
}

function ensembleAttributes(forest: YdfTrees, labels: number) {
  const nodes = {
    tree: [] as number[],
    node: [] as number[],
    feature: [] as number[],
    value: [] as number[],
    whenTrue: [] as number[],
    whenFalse: [] as number[],
    mode: [] as string[],
  };
  const targets = {
    tree: [] as number[],
    node: [] as number[],
    id: [] as number[],
    weight: [] as number[],
  };
  const boosted = forest.learner === 'boosted trees';
  forest.trees.forEach((tree, t) => {
    // Boosted trees: tree t adds to label t mod treesPerIteration (the second of two labels).
    const boostedLabel =
      labels === 2 && forest.treesPerIteration === 1 ? 1 : t % forest.treesPerIteration;
    tree.forEach((node, n) => {
      nodes.tree.push(t);
      nodes.node.push(n);
      if (node.kind === 'split') {
        nodes.feature.push(node.feature);
        nodes.value.push(node.threshold);
        nodes.whenTrue.push(node.positive);
        nodes.whenFalse.push(node.negative);
        nodes.mode.push('BRANCH_GTE');
      } else {
        nodes.feature.push(0);
        nodes.value.push(0);
        nodes.whenTrue.push(0);
        nodes.whenFalse.push(0);
        nodes.mode.push('LEAF');
        targets.tree.push(t);
        targets.node.push(n);
        targets.id.push(boosted ? boostedLabel : node.value);
        targets.weight.push(boosted ? node.value : 1 / forest.trees.length);
      }
    });
  });
  const base = new Array<number>(labels).fill(0);
  if (boosted && labels === 2) base[1] = forest.initialPredictions[0] ?? 0;
  else if (boosted) forest.initialPredictions.forEach((value, k) => (base[k] = value));
  return {
    numeric: {
      n_targets: int(labels),
      nodes_treeids: ints(nodes.tree),
      nodes_nodeids: ints(nodes.node),
      nodes_featureids: ints(nodes.feature),
      nodes_values: floats(nodes.value),
      nodes_truenodeids: ints(nodes.whenTrue),
      nodes_falsenodeids: ints(nodes.whenFalse),
      target_treeids: ints(targets.tree),
      target_nodeids: ints(targets.node),
      target_ids: ints(targets.id),
      target_weights: floats(targets.weight),
      base_values: floats(base),
    },
    strings: [
      stringsAttribute('nodes_modes', nodes.mode),
      stringAttribute('aggregate_function', 'SUM'),
      stringAttribute('post_transform', 'NONE'),
    ],
  };
}

/** GraphBuilder's attributes have no list of strings (ONNX-ML's node modes need one). */
function stringsAttribute(name: string, values: string[]): AttributeProto {
  const encoder = new TextEncoder();
  return {
    name,
    type: AttributeType.STRINGS,
    strings: values.map((value) => encoder.encode(value)),
    floats: [],
    ints: [],
    tensors: [],
    graphs: [],
  } as unknown as AttributeProto;
}

function stringAttribute(name: string, value: string): AttributeProto {
  return {
    ...stringsAttribute(name, []),
    type: AttributeType.STRING,
    s: new TextEncoder().encode(value),
  } as unknown as AttributeProto;
}
