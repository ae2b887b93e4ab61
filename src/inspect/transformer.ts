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
import { runWithCache, runWithInterventions } from '../runtime/run.ts';
import { ablate } from '../graph/interventions.ts';
import type { Feeds, Tensor } from '../tensor.ts';
import { scoreRows } from '../train/evaluate.ts';

export interface LensLayer { layer: string; loss: number; accuracy: number }
export interface HeadSummary { hook: string; head: number; entropy: number; self: number; previous: number; first: number }
export interface TransformerViews {
  logitLens: LensLayer[];
  attention: HeadSummary[];
  logitAttribution?: { components: LogitAttribution[]; exact: boolean; bias: number };
}

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
  const logitAttribution = labels ? await directLogitAttribution(model, feeds, labels, positions) : undefined;
  return { logitLens, attention: softmaxHooks.flatMap((hook) => summariseHeads(hook, cache.get(hook)!)), logitAttribution };
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

export interface LogitAttribution {
  component: string;
  /** Mean over examples of the component's contribution to the label's logit (at the scored position). */
  contribution: number;
}

/**
 * Direct logit attribution: how much each component writing to the residual stream — the
 * embedding, every attention head, every MLP — adds to the label's logit, read through the
 * model's own tail T (final LayerNorm if any, unembedding): contribution(c) = T(c) − T(0). A head's
 * output is the attention output minus the attention output with that head's pattern zeroed (the
 * projection is linear in each head's mix). For a tail without LayerNorm the contributions plus
 * T(0) sum exactly to the logit; with a final LayerNorm they are the usual approximation.
 */
export async function directLogitAttribution(model: Model, feeds: Feeds, labels: Tensor, positions: 'all' | 'last'): Promise<{ components: LogitAttribution[]; exact: boolean; bias: number } | undefined> {
  const blocks = model.hooks.hooks.filter((hook) => hook.kind === 'module' && /^blocks\.\d+$/.test(hook.name)).map((hook) => hook.name)
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
  const output = model.outputNames[0];
  if (blocks.length === 0) return undefined;
  const tail = await model.downstream(model.hooks.resolve(blocks.at(-1)!).value, output);
  const embedding = residualInput(model, blocks[0]);
  if (!tail || tail.inputs.length !== 1 || !embedding) return undefined;
  const exact = !model.hooks.get('ln_f');
  const read = async (residual: Tensor) => (await tail.session.run({ [tail.inputs[0]]: residual }, [output]))[output];
  const labelLogit = (scores: Tensor) => { // mean over examples of the label's score at the scored position(s)
    const classes = scores.dims[scores.dims.length - 1];
    const sequence = scores.dims.length === 3 ? scores.dims[1] : 1;
    let sum = 0;
    let count = 0;
    for (let example = 0; example < scores.dims[0]; example++) {
      for (let position = positions === 'last' ? sequence - 1 : 0; position < sequence; position++) {
        const row = example * sequence + position;
        sum += Number(scores.data[row * classes + Number(labels.data[labels.data.length === scores.dims[0] ? example : row])]);
        count++;
      }
    }
    return sum / count;
  };
  const componentNames = blocks.flatMap((block) => [`${block}.attn`, `${block}.mlp`]).filter((name) => model.hooks.get(name));
  const { cache } = await runWithCache(model, feeds, [embedding, ...componentNames]);
  const zero = { ...cache.get(embedding)!, data: new Float32Array(cache.get(embedding)!.data.length) };
  const bias = labelLogit(await read(zero));
  const contribution = async (value: Tensor) => labelLogit(await read(value)) - bias;
  const components: LogitAttribution[] = [{ component: 'embedding', contribution: await contribution(cache.get(embedding)!) }];
  for (const block of blocks) {
    const attn = `${block}.attn`;
    const softmax = `${block}.attn.softmax`;
    if (model.hooks.get(attn) && model.hooks.get(softmax)) {
      const full = cache.get(attn)!;
      const heads = (await runWithCache(model, feeds, [softmax])).cache.get(softmax)!.dims[1];
      const rest = Float32Array.from(full.data as Float32Array); // what no head writes: the output projection's bias
      for (let head = 0; head < heads; head++) {
        const without = (await runWithInterventions(model, feeds, [ablate(softmax, 'zero', { units: [head] })], { cache: [attn] })).cache.get(attn)!;
        const headOutput = (full.data as Float32Array).map((v, i) => v - Number(without.data[i]));
        headOutput.forEach((v, i) => { rest[i] -= v; });
        components.push({ component: `${attn}#${head}`, contribution: await contribution({ ...full, data: headOutput }) });
      }
      components.push({ component: `${attn} bias`, contribution: await contribution({ ...full, data: rest }) });
    }
    if (model.hooks.get(`${block}.mlp`)) components.push({ component: `${block}.mlp`, contribution: await contribution(cache.get(`${block}.mlp`)!) });
  }
  return { components, exact, bias };
}
