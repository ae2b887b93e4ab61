/**
 * Views of transformers, found by their module names: a ModuleList of blocks (`blocks.<i>`,
 * GPT-2's `h.<i>`, `layers.<i>`, torchvision ViT's `encoder_layer_<i>`) each with an attention
 * module (`attn`, `self_attn`, `self_attention`, `attention`) and usually an MLP (`mlp`, `ffn`):
 * - logit lens: the residual stream entering the first block and after every block, read out
 *   through the model's own tail (final LayerNorm if any, unembedding) — by running the part of
 *   the graph downstream of the last block (graph/downstream.ts) on each layer's residual, with
 *   whatever else the tail reads (an attention mask's pooling weights) from the clean run; loss and
 *   accuracy per layer against the labels.
 * - attention summary per head, from each block's attention pattern (the `attn.softmax` module,
 *   or the last-axis Softmax inside the attention module), [batch, heads, query, key]: mean
 *   entropy, and the mean attention to the query's own position, to the previous and to the first.
 * - direct logit attribution (below), for blocks that add to the residual stream (pre-norm).
 * What cannot be shown is said in `notes`, with the reason.
 */
import type { Model } from '../runtime/model.ts';
import { runWithCache, runWithInterventions } from '../runtime/run.ts';
import { ablate } from '../graph/interventions.ts';
import { moduleScopes } from '../graph/scopes.ts';
import type { Feeds, Tensor } from '../tensor.ts';
import { scoreRows } from '../train/evaluate.ts';

export interface LensLayer {
  layer: string;
  loss: number;
  accuracy: number;
}
export interface HeadSummary {
  hook: string;
  head: number;
  entropy: number;
  self: number;
  previous: number;
  first: number;
}
export interface TransformerViews {
  logitLens: LensLayer[];
  attention: HeadSummary[];
  logitAttribution?: { components: LogitAttribution[]; exact: boolean; bias: number };
  /** Views that could not be computed, and why. */
  notes: string[];
}

/** The transformer's blocks in order, each with its attention, pattern and MLP hooks where found. */
export interface TransformerLayout {
  blocks: { name: string; value: string; attention?: string; pattern?: string; mlp?: string }[];
  /** The residual stream entering the first block. */
  embedding?: string;
}

const ATTENTION = ['attn', 'self_attn', 'self_attention', 'attention'];
const MLP = ['mlp', 'ffn', 'feed_forward'];

/** undefined when the model has no blocks with an attention module. */
export function transformerLayout(model: Model): TransformerLayout | undefined {
  const groups = new Map<string, { name: string; value: string; index: number }[]>();
  for (const hook of model.hooks.hooks) {
    const numbered = hook.kind === 'module' ? /^(.*[._])(\d+)$/.exec(hook.name) : null;
    if (!numbered || !ATTENTION.some((child) => model.hooks.get(`${hook.name}.${child}`))) continue;
    const group = groups.get(numbered[1]) ?? [];
    group.push({ name: hook.name, value: hook.value, index: Number(numbered[2]) });
    groups.set(numbered[1], group);
  }
  const largest = [...groups.values()].sort((a, b) => b.length - a.length)[0];
  if (!largest) return undefined;
  const blocks = largest
    .sort((a, b) => a.index - b.index)
    .map(({ name, value }) => {
      const attention = ATTENTION.map((child) => `${name}.${child}`).find((child) =>
        model.hooks.get(child),
      );
      return {
        name,
        value,
        attention,
        pattern: attention && attentionPattern(model, attention),
        mlp: MLP.map((child) => `${name}.${child}`).find((child) => model.hooks.get(child)),
      };
    });
  return { blocks, embedding: residualInput(model, blocks[0].name) };
}

/** The `softmax` module of an attention module, or the value of the last Softmax node inside it. */
function attentionPattern(model: Model, attention: string): string | undefined {
  if (model.hooks.get(`${attention}.softmax`)) return `${attention}.softmax`;
  const softmax = model.graph.nodes
    .filter((node) => node.opType === 'Softmax' && moduleScopes(node).includes(attention))
    .at(-1);
  return softmax?.output[0];
}

/** undefined when the model has no transformer blocks. */
export async function transformerViews(
  model: Model,
  feeds: Feeds,
  labels: Tensor | undefined,
  positions: 'all' | 'last',
): Promise<TransformerViews | undefined> {
  const layout = transformerLayout(model);
  if (!layout) return undefined;
  const notes: string[] = [];
  const { blocks, embedding } = layout;
  const output = model.outputNames[0];
  const patterns = blocks.flatMap((block) => (block.pattern ? [block.pattern] : []));
  const layers = [
    ...(embedding ? [{ name: 'embedding', value: embedding }] : []),
    ...blocks.map((block) => ({ name: block.name, value: block.value })),
  ];
  if (!embedding)
    notes.push(
      `Logit lens: no 'embedding' row — no single float value computed from the inputs enters '${blocks[0].name}'.`,
    );
  const tail = await model.downstream(blocks.at(-1)!.value, output);
  const { cache } = await runWithCache(model, feeds, [
    ...new Set([...layers.map((layer) => layer.value), ...patterns, ...(tail?.inputs ?? [])]),
  ]);
  const logitLens: LensLayer[] = [];
  if (!labels) notes.push('Logit lens and direct logit attribution need labels: give --labels.');
  else if (!tail)
    notes.push(
      `Logit lens: the output '${output}' does not depend on the last block '${blocks.at(-1)!.name}'.`,
    );
  else {
    const rest = Object.fromEntries(
      tail.inputs.slice(1).map((value) => [value, cache.get(value)!]),
    );
    for (const layer of layers) {
      const scores = (
        await tail.session.run({ ...rest, [tail.inputs[0]]: cache.get(layer.value)! }, [output])
      )[output];
      const scored = scoreRows(scores, labels, positions);
      logitLens.push({
        layer: layer.name,
        loss: scored.lossSum / scored.rows,
        accuracy: scored.correct / scored.rows,
      });
    }
  }
  const attention: HeadSummary[] = [];
  for (const pattern of patterns) {
    const value = cache.get(pattern)!;
    if (value.dims.length === 4) attention.push(...summariseHeads(pattern, value));
    else
      notes.push(
        `Attention heads: the pattern '${pattern}' has shape [${value.dims.join(', ')}], not [batch, heads, query, key] (heads folded into the batch, as nn.MultiheadAttention does), so heads are not summarised.`,
      );
  }
  if (!patterns.length)
    notes.push('Attention heads: no Softmax found inside the attention modules.');
  const logitAttribution =
    labels && tail
      ? await directLogitAttribution(model, feeds, labels, positions, notes)
      : undefined;
  return { logitLens, attention, logitAttribution, notes };
}

/** The residual stream entering a block: the float value its nodes read from outside it that carries the inputs. */
function residualInput(model: Model, block: string): string | undefined {
  const inside = (index: number) => moduleScopes(model.graph.nodes[index]).includes(block);
  for (const [index, node] of model.graph.nodes.entries()) {
    if (!inside(index)) continue;
    for (const input of node.input) {
      const producer = model.graph.producer.get(input);
      if (
        producer !== undefined &&
        !inside(producer) &&
        model.graph.fromInputs.has(input) &&
        model.graph.isFloat(input)
      )
        return input;
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
    return {
      hook,
      head,
      entropy: entropy / rows,
      self: self / rows,
      previous: previous / (batch * Math.max(1, queries - 1)),
      first: first / rows,
    };
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
export async function directLogitAttribution(
  model: Model,
  feeds: Feeds,
  labels: Tensor,
  positions: 'all' | 'last',
  notes: string[] = [],
): Promise<{ components: LogitAttribution[]; exact: boolean; bias: number } | undefined> {
  const layout = transformerLayout(model);
  if (!layout) return undefined;
  const { blocks, embedding } = layout;
  const output = model.outputNames[0];
  const skip = (reason: string) => {
    notes.push(`Direct logit attribution: ${reason}`);
    return undefined;
  };
  // Components add up to the residual stream only when every block ends in that addition (pre-norm).
  const postNorm = blocks.find((block) => model.hooks.get(block.name)!.op !== 'Add');
  if (postNorm)
    return skip(
      `'${postNorm.name}' ends in ${model.hooks.get(postNorm.name)!.op}, not in the residual addition (a post-norm block), so its parts do not add up to the stream the unembedding reads.`,
    );
  if (!embedding) return skip(`no single residual stream enters '${blocks[0].name}'.`);
  const tail = await model.downstream(blocks.at(-1)!.value, output);
  if (!tail) return skip(`the output does not depend on '${blocks.at(-1)!.name}'.`);
  const exact = !normalisesAfter(model, blocks.at(-1)!.value);
  const { cache: cut } = await runWithCache(model, feeds, tail.inputs.slice(1));
  const rest = Object.fromEntries(tail.inputs.slice(1).map((value) => [value, cut.get(value)!]));
  const read = async (residual: Tensor) =>
    (await tail.session.run({ ...rest, [tail.inputs[0]]: residual }, [output]))[output];
  const labelLogit = (scores: Tensor) => {
    // mean over examples of the label's score at the scored position(s)
    const classes = scores.dims[scores.dims.length - 1];
    const sequence = scores.dims.length === 3 ? scores.dims[1] : 1;
    let sum = 0;
    let count = 0;
    for (let example = 0; example < scores.dims[0]; example++) {
      for (
        let position = positions === 'last' ? sequence - 1 : 0;
        position < sequence;
        position++
      ) {
        const row = example * sequence + position;
        sum += Number(
          scores.data[
            row * classes +
              Number(labels.data[labels.data.length === scores.dims[0] ? example : row])
          ],
        );
        count++;
      }
    }
    return sum / count;
  };
  const componentNames = blocks.flatMap((block) =>
    [block.attention, block.mlp].filter((name): name is string => name !== undefined),
  );
  const { cache } = await runWithCache(model, feeds, [embedding, ...componentNames]);
  const zero = {
    ...cache.get(embedding)!,
    data: new Float32Array(cache.get(embedding)!.data.length),
  };
  const bias = labelLogit(await read(zero));
  const contribution = async (value: Tensor) => labelLogit(await read(value)) - bias;
  const components: LogitAttribution[] = [
    { component: 'embedding', contribution: await contribution(cache.get(embedding)!) },
  ];
  for (const block of blocks) {
    if (block.attention && block.pattern)
      components.push(
        ...(await headContributions(
          model,
          feeds,
          block.attention,
          block.pattern,
          cache.get(block.attention)!,
          contribution,
        )),
      );
    else if (block.attention)
      components.push({
        component: block.attention,
        contribution: await contribution(cache.get(block.attention)!),
      });
    if (block.mlp)
      components.push({
        component: block.mlp,
        contribution: await contribution(cache.get(block.mlp)!),
      });
  }
  if (blocks.some((block) => !block.mlp))
    notes.push(
      `Direct logit attribution: no MLP module found in ${blocks
        .filter((block) => !block.mlp)
        .map((block) => `'${block.name}'`)
        .join(', ')}; what it adds is left out.`,
    );
  return { components, exact, bias };
}

/**
 * A head's output is the attention output minus the attention output with that head's pattern
 * zeroed (the output projection is linear in each head's mix); what no head writes is the
 * projection's bias.
 */
async function headContributions(
  model: Model,
  feeds: Feeds,
  attention: string,
  pattern: string,
  full: Tensor,
  contribution: (value: Tensor) => Promise<number>,
): Promise<LogitAttribution[]> {
  const patternDims = (await runWithCache(model, feeds, [pattern])).cache.get(pattern)!.dims;
  if (patternDims.length !== 4)
    return [{ component: attention, contribution: await contribution(full) }]; // heads folded into the batch
  const heads = patternDims[1];
  const rest = Float32Array.from(full.data as Float32Array);
  const components: LogitAttribution[] = [];
  for (let head = 0; head < heads; head++) {
    const without = (
      await runWithInterventions(
        model,
        feeds,
        [ablate(pattern, 'zero', { units: [head], unitAxis: 1 })],
        { cache: [attention] },
      )
    ).cache.get(attention)!;
    const headOutput = (full.data as Float32Array).map((v, i) => v - Number(without.data[i]));
    headOutput.forEach((v, i) => {
      rest[i] -= v;
    });
    components.push({
      component: `${attention}#${head}`,
      contribution: await contribution({ ...full, data: headOutput }),
    });
  }
  components.push({
    component: `${attention} bias`,
    contribution: await contribution({ ...full, data: rest }),
  });
  return components;
}

/** Whether a normalisation (LayerNorm as one op or as its ReduceMean formula) reads anything computed from `value`. */
function normalisesAfter(model: Model, value: string): boolean {
  const reached = new Set([value]);
  for (const node of model.graph.nodes) {
    if (!node.input.some((input) => reached.has(input))) continue;
    if (/Normalization$/.test(node.opType) || node.opType === 'ReduceMean') return true;
    node.output.forEach((output) => reached.add(output));
  }
  return false;
}
