/**
 * A YDF model read from the files it saves (`header.pb`, `data_spec.pb`, the learner's header and
 * `nodes-00000-of-00001`), as plain trees: no new dependency, protobufjs with the few messages
 * of YDF's schema read here (yggdrasil_decision_forests/model/{decision_tree/decision_tree,
 * gradient_boosted_trees/gradient_boosted_trees,random_forest/random_forest}.proto and
 * dataset/data_spec.proto; field numbers as in YDF 1.x, which ydf-training 0.0.1 writes).
 *
 * The nodes file is a blob sequence: "BS", a 2-byte version and 4 reserved bytes, then records of
 * a 4-byte little-endian length and a serialized `Node`. Each tree's nodes are in pre-order, a
 * split followed by its negative subtree (condition false) and then its positive one.
 */
import protobuf from 'protobufjs';
import { InternalError } from '../errors.ts';

export type TreeNode =
  /** x[feature] ≥ threshold goes to `positive`, otherwise to `negative` (indices in the tree). */
  | { kind: 'split'; feature: number; threshold: number; negative: number; positive: number }
  /** Boosted trees: the leaf's value; a forest: the leaf's class (YDF's label index, from 0). */
  | { kind: 'leaf'; value: number };

export interface YdfTrees {
  learner: 'boosted trees' | 'random forest';
  trees: TreeNode[][];
  /** Boosted trees: tree t adds to the score of label t mod treesPerIteration. */
  treesPerIteration: number;
  /** Boosted trees: the score of each label before any tree. */
  initialPredictions: number[];
}

const SCHEMA = protobuf.Root.fromJSON({
  nested: {
    Column: { fields: { name: { type: 'string', id: 2 } } },
    DataSpecification: { fields: { columns: { rule: 'repeated', type: 'Column', id: 1 } } },
    Classifier: { fields: { topValue: { type: 'int32', id: 1 } } },
    Regressor: { fields: { topValue: { type: 'float', id: 1 } } },
    Higher: { fields: { threshold: { type: 'float', id: 1 } } },
    Condition: {
      oneofs: {
        type: {
          oneof: ['na', 'higher', 'trueValue', 'contains', 'bitmap', 'discretized', 'oblique'],
        },
      },
      fields: {
        na: { type: 'Other', id: 1 },
        higher: { type: 'Higher', id: 2 },
        trueValue: { type: 'Other', id: 3 },
        contains: { type: 'Other', id: 4 },
        bitmap: { type: 'Other', id: 5 },
        discretized: { type: 'Other', id: 6 },
        oblique: { type: 'Other', id: 7 },
      },
    },
    Other: { fields: {} },
    NodeCondition: {
      fields: { attribute: { type: 'int32', id: 2 }, condition: { type: 'Condition', id: 3 } },
    },
    Node: {
      fields: {
        classifier: { type: 'Classifier', id: 1 },
        regressor: { type: 'Regressor', id: 2 },
        condition: { type: 'NodeCondition', id: 3 },
      },
    },
    BoostedHeader: {
      fields: {
        numTrees: { type: 'int64', id: 2 },
        initialPredictions: { rule: 'repeated', type: 'float', id: 4 },
        numTreesPerIter: { type: 'int32', id: 5 },
      },
    },
    ForestHeader: {
      fields: {
        numTrees: { type: 'int64', id: 2 },
        winnerTakeAll: { type: 'bool', id: 3 },
      },
    },
  },
});

interface DecodedNode {
  classifier?: { topValue: number };
  regressor?: { topValue: number };
  condition?: { attribute: number; condition: { type: string; higher?: { threshold: number } } };
}

/** The trees of a saved YDF model, its features named f0 … f{n−1} (race/ydf.ts). */
export function readYdfTrees(files: Record<string, Uint8Array>): YdfTrees {
  const boosted = 'gradient_boosted_trees_header.pb' in files;
  const featureOf = featureIndices(files['data_spec.pb']);
  const nodes = blobSequence(files['nodes-00000-of-00001']).map(
    (bytes) =>
      SCHEMA.lookupType('Node').toObject(SCHEMA.lookupType('Node').decode(bytes), {
        oneofs: true,
      }) as DecodedNode,
  );
  const trees = treesInPreOrder(nodes, featureOf, boosted);
  if (boosted) {
    const header = decoded(files['gradient_boosted_trees_header.pb'], 'BoostedHeader');
    return {
      learner: 'boosted trees',
      trees,
      treesPerIteration: (header.numTreesPerIter as number) || 1,
      initialPredictions: (header.initialPredictions as number[]) ?? [],
    };
  }
  const header = decoded(files['random_forest_header.pb'], 'ForestHeader');
  if (header.winnerTakeAll === false)
    throw new InternalError(
      "The YDF forest averages its leaves' distributions: only votes are read.",
    );
  return { learner: 'random forest', trees, treesPerIteration: 1, initialPredictions: [] };
}

function decoded(bytes: Uint8Array, type: string): Record<string, unknown> {
  const message = SCHEMA.lookupType(type);
  return message.toObject(message.decode(bytes), { longs: Number, defaults: false });
}

/** The feature index of each column of the data spec (f<j> → j; the label has none). */
function featureIndices(dataSpec: Uint8Array): (number | undefined)[] {
  const columns = decoded(dataSpec, 'DataSpecification').columns as { name: string }[];
  return columns.map(({ name }) => (/^f\d+$/.test(name) ? Number(name.slice(1)) : undefined));
}

function blobSequence(bytes: Uint8Array): Uint8Array[] {
  if (bytes[0] !== 0x42 || bytes[1] !== 0x53)
    throw new InternalError("YDF's nodes file does not start with a blob sequence header ('BS').");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  for (let at = 8; at < bytes.length;) {
    const length = view.getUint32(at, true);
    records.push(bytes.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return records;
}

/** The pre-order node list as trees: a subtree is a node and, for a split, two subtrees. */
function treesInPreOrder(
  nodes: DecodedNode[],
  featureOf: (number | undefined)[],
  boosted: boolean,
): TreeNode[][] {
  const trees: TreeNode[][] = [];
  let next = 0;
  const subtree = (tree: TreeNode[]): number => {
    const node = nodes[next++];
    const at = tree.length;
    if (!node.condition) {
      const value = boosted ? node.regressor?.topValue : node.classifier?.topValue;
      // YDF's label dictionary holds an out-of-vocabulary item at index 0.
      tree.push({ kind: 'leaf', value: boosted ? (value ?? 0) : (value ?? 0) - 1 });
      return at;
    }
    const { attribute, condition } = node.condition;
    const feature = featureOf[attribute ?? 0]; // proto2: an unset field is its default, 0
    if (condition.type !== 'higher' || feature === undefined)
      throw new InternalError(
        `A YDF split tests '${condition.type}' on column ${attribute}: ` +
          'teardown reads only x ≥ t on a feature.',
      );
    const split = {
      kind: 'split' as const,
      feature,
      threshold: condition.higher!.threshold ?? 0,
      negative: 0,
      positive: 0,
    };
    tree.push(split);
    split.negative = subtree(tree);
    split.positive = subtree(tree);
    return at;
  };
  while (next < nodes.length) {
    const tree: TreeNode[] = [];
    subtree(tree);
    trees.push(tree);
  }
  return trees;
}
