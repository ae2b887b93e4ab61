/**
 * Views of decoder-only transformers named as PyTorch names them (blocks.<i>, optional ln_f,
 * unembed; as the gpt fixture, and teardown's own builder):
 * - logit lens: the residual stream after the embedding and after every block, read out through
 *   the model's own tail (final LayerNorm if any, unembedding) — by running the part of the graph
 *   downstream of the last block (graph/downstream.ts) on each layer's residual; loss and accuracy
 *   per layer against the labels.
 * - attention summary per head, from every `*.attn.softmax` hook ([batch, heads, query, key]): mean
 *   entropy of the pattern, and the mean attention to the query's own position, to the previous
 *   position and to the first.
 */
import type { Model } from '../runtime/model.ts';
import { runWithCache } from '../runtime/run.ts';
import type { Feeds, Tensor } from '../tensor.ts';
import { scoreRows } from '../train/evaluate.ts';

export interface LensLayer { layer: string; loss: number; accuracy: number }
export interface HeadSummary { hook: string; head: number; entropy: number; self: number; previous: number; first: number }
export interface TransformerViews { logitLens: LensLayer[]; attention: HeadSummary[] }

/** undefined when the model has no blocks.<i> modules. */
export async function transformerViews(model: Model, feeds: Feeds, labels: Tensor | undefined, positions: 'all' | 'last'): Promise<TransformerViews | undefined> {
  const blocks = model.hooks.hooks.filter((hook) => hook.kind === 'module' && /^blocks\.\d+$/.test(hook.name))
    .sort((a, b) => Number(a.name.split('.')[1]) - Number(b.name.split('.')[1]));
  if (blocks.length === 0) return undefined;
  const output = model.outputNames[0];
  const softmaxHooks = model.hooks.hooks.filter((hook) => hook.kind === 'module' && /\.attn\.softmax$/.test(hook.name)).map((hook) => hook.name);
  const embedding = residualInput(model, blocks[0].name);
  const layers = [...(embedding ? [{ name: 'embedding', value: embedding }] : []), ...blocks.map((hook) => ({ name: hook.name, value: hook.value }))];
  const { cache } = await runWithCache(model, feeds, [...new Set([...layers.map((layer) => layer.value), ...softmaxHooks])]);
  const logitLens: LensLayer[] = [];
  const tail = await model.downstream(blocks.at(-1)!.value, output);
  if (labels && tail && tail.inputs.length === 1) {
    for (const layer of layers) {
      const scores = (await tail.session.run({ [tail.inputs[0]]: cache.get(layer.value)! }, [output]))[output];
      const scored = scoreRows(scores, labels, positions);
      logitLens.push({ layer: layer.name, loss: scored.lossSum / scored.rows, accuracy: scored.correct / scored.rows });
    }
  }
  return { logitLens, attention: softmaxHooks.flatMap((hook) => summariseHeads(hook, cache.get(hook)!)) };
}

/** The residual stream entering block 0: the float value its nodes read from outside the block that carries the inputs. */
function residualInput(model: Model, block: string): string | undefined {
  const scope = `/${block.split('.')[0]}/${block}/`;
  const inside = (name: string) => name.startsWith(scope);
  for (const node of model.graph.nodes) {
    if (!inside(node.name)) continue;
    for (const input of node.input) {
      const producer = model.graph.producer.get(input);
      if (producer !== undefined && !inside(model.graph.nodes[producer].name) && model.graph.fromInputs.has(input) && model.graph.isFloat(input)) return input;
    }
  }
  return undefined;
}

function summariseHeads(hook: string, pattern: Tensor): HeadSummary[] {
  const [batch, heads, queries, keys] = pattern.dims;
  return Array.from({ length: heads }, (_, head) => {
    let entropy = 0;
    let self = 0;
    let previous = 0;
    let first = 0;
    for (let b = 0; b < batch; b++) {
      for (let q = 0; q < queries; q++) {
        const row = ((b * heads + head) * queries + q) * keys;
        for (let k = 0; k < keys; k++) {
          const p = Number(pattern.data[row + k]);
          if (p > 0) entropy -= p * Math.log(p);
        }
        self += Number(pattern.data[row + q]);
        previous += q > 0 ? Number(pattern.data[row + q - 1]) : 0;
        first += Number(pattern.data[row]);
      }
    }
    const rows = batch * queries;
    return { hook, head, entropy: entropy / rows, self: self / rows, previous: previous / (batch * Math.max(1, queries - 1)), first: first / rows };
  });
}
