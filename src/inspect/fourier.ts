/**
 * Periodic structure of models on modular arithmetic (Nanda et al. 2023, "Progress measures for
 * grokking via mechanistic interpretability"), for inputs [a, b, =] with operands in [0, P).
 *
 * Fourier basis on Z_P (orthonormal): 1/√P, and for k = 1..(P−1)/2: √(2/P)·cos(2πka/P), √(2/P)·sin(2πka/P).
 * - Embedding: the energy of each frequency k in the operand rows of the token embedding
 *   (Σ over d_model of the squared cos and sin coefficients), as a share of the total.
 * - Logits at the last position over every pair: L[a, b, c]. For each k the 3-D directions
 *   cos(w(a+b−c)) and sin(w(a+b−c)), w = 2πk/P, normalised over (a, b, c); the key frequencies are
 *   those whose projection energy is at least 5% of the largest. Restricted logits keep only the
 *   projections on the key directions; excluded logits remove them; both are scored by
 *   cross-entropy on the training pairs, next to the full model's loss.
 * - Units: the share of each unit's variance over the (a, b) grid (at the last position) explained
 *   by products of the key-frequency basis functions of a and of b.
 */
import { trackProgress, type ProgressOptions } from '../progress.ts';
import { InputError } from '../errors.ts';
import type { Model } from '../runtime/model.ts';
import { runWithCache } from '../runtime/run.ts';
import { tensorFromProto } from '../onnx/tensor-proto.ts';
import { unitAxisOf } from '../graph/units.ts';
import { tensor, type Tensor } from '../tensor.ts';

export interface FourierResult {
  modulus: number;
  /** Energy share of every frequency k = 1..(P−1)/2 in the embedding's operand rows (index k−1). */
  embeddingEnergy: number[];
  keyFrequencies: number[];
  /** Share of the logits' variance (over a, b, c, after removing each (a, b)'s mean over c) explained by the key directions. */
  varianceExplained: number;
  /** Number of (frequency, cos|sin) logit components above 1% of the logits' energy. */
  significantComponents: number;
  loss: { full: number; restricted: number; excluded: number };
  /** Per hook: per unit, the share of variance explained by key-frequency products. */
  units: Record<string, number[]>;
}

export interface FourierOptions extends ProgressOptions {
  trainPairs?: Int32Array;
  hooks?: string[];
  embedding?: string;
}

/** `onProgress` hears the run over every pair, then each hook's units; `signal` is checked between. */
export async function fourierAnalysis(
  model: Model,
  modulus: number,
  options: FourierOptions = {},
): Promise<FourierResult> {
  const P = modulus;
  const input = model.inputs[0];
  if (model.inputs.length !== 1 || input.dtype !== 'int64' || input.dims?.length !== 2) {
    throw new InputError(
      `--fourier needs a model whose input is a sequence of integer tokens [batch, seq]; this one takes ${model.describeInputs()}.`,
    );
  }
  const frequencies = (P - 1) / 2;
  if (!Number.isInteger(frequencies))
    throw new InputError(`--fourier needs an odd modulus P, got ${P}.`);
  // A symbolic sequence axis is fed the task's three tokens [a, b, =].
  const seq = typeof input.dims[1] === 'number' ? input.dims[1] : 3;
  if (seq < 3)
    throw new InputError(
      `--fourier needs sequences of at least 3 tokens [a, b, =]; the model's input '${input.name}' has ${seq}.`,
    );
  // Every pair (a, b) as [a, b, P] (= is token P), in row-major (a, b) order.
  const tokens = tensor(
    'int64',
    [P * P, seq],
    Array.from({ length: P * P }, (_, n) =>
      [Math.floor(n / P), n % P, P, ...Array(Math.max(0, seq - 3)).fill(P)].slice(0, seq),
    ).flat(),
  );
  const hooks = options.hooks ?? [];
  const progress = trackProgress('fourier', 1 + hooks.length, options);
  const { outputs, cache } = await runWithCache(model, { [input.name]: tokens }, hooks);
  progress.tick(1, `${P * P} pairs run`);
  const scores = outputs[model.outputNames[0]]; // [P², seq, classes], or [P², classes] for a model that scores only its last position
  const classes = scores.dims[scores.dims.length - 1];
  if (classes < P)
    throw new InputError(
      `--fourier ${P}: the model scores ${classes} classes, fewer than the modulus.`,
    );
  const logits = lastPosition(scores, P); // [P·P·P] over (a, b, c), c < P

  const embeddingEnergy = embeddingFrequencyEnergy(model, options.embedding, P);
  const { keyFrequencies, restricted, excluded, varianceExplained, significantComponents } =
    projectLogits(logits, P);
  const train = options.trainPairs ?? Int32Array.from({ length: P * P }, (_, n) => n);
  const loss = {
    full: crossEntropy(logits, P, train),
    restricted: crossEntropy(restricted, P, train),
    excluded: crossEntropy(excluded, P, train),
  };
  const units: Record<string, number[]> = {};
  // Units of [pairs, d] and [pairs, seq, d] hooks (attention patterns, [pairs, heads, q, k], have no per-unit grid here).
  for (const hook of hooks) {
    const values = cache.get(hook)!;
    if (values.dims.length <= 3)
      units[hook] = unitVarianceExplained(
        values,
        P,
        keyFrequencies,
        unitAxisOf(model.hooks.resolve(hook), values.dims.length),
      );
    progress.tick(1, hook);
  }
  return {
    modulus: P,
    embeddingEnergy,
    keyFrequencies,
    varianceExplained,
    significantComponents,
    loss,
    units,
  };
}

/** L[a, b, c] for c < P at the last position, as a flat Float64Array. */
function lastPosition(scores: Tensor, P: number): Float64Array {
  const classes = scores.dims[scores.dims.length - 1];
  const positions = scores.dims.length === 3 ? scores.dims[1] : 1;
  const out = new Float64Array(P * P * P);
  for (let pair = 0; pair < P * P; pair++) {
    const row = (pair * positions + positions - 1) * classes;
    for (let c = 0; c < P; c++) out[pair * P + c] = Number(scores.data[row + c]);
  }
  return out;
}

/** Share of each frequency in the operand rows (tokens 0..P−1) of the embedding matrix. */
function embeddingFrequencyEnergy(model: Model, name: string | undefined, P: number): number[] {
  const initializer =
    model.proto.graph.initializer.find((t) => t.name === (name ?? 'embed.weight')) ??
    model.proto.graph.initializer.find(
      (t) => t.dims.length === 2 && Number(t.dims[0]) > P && Number(t.dims[0]) <= P + 4,
    );
  if (!initializer) return [];
  const embedding = tensorFromProto(initializer); // [vocab, d]
  const d = embedding.dims[1];
  const energy = new Array((P - 1) / 2).fill(0);
  for (let k = 1; k <= (P - 1) / 2; k++) {
    for (let j = 0; j < d; j++) {
      let cos = 0;
      let sin = 0;
      for (let a = 0; a < P; a++) {
        const value = Number(embedding.data[a * d + j]);
        cos += value * Math.cos((2 * Math.PI * k * a) / P);
        sin += value * Math.sin((2 * Math.PI * k * a) / P);
      }
      energy[k - 1] += (2 / P) * (cos * cos + sin * sin);
    }
  }
  const total = energy.reduce((a, b) => a + b, 0);
  return energy.map((e) => e / total);
}

/**
 * Projections of L on the normalised directions cos/sin(w(a+b−c)) of every frequency. Both depend
 * on (a, b, c) only through r = (a + b − c) mod P, and every r occurs P² times, so with
 * S[r] = Σ_{a+b−c ≡ r} L[a, b, c] the coefficient is Σ_r S[r]·cos(2πkr/P) / √(P³/2).
 */
function projectLogits(logits: Float64Array, P: number) {
  // Centre each (a, b)'s logits over c: a constant shift per pair changes no probability.
  const centred = Float64Array.from(logits);
  for (let pair = 0; pair < P * P; pair++) {
    let mean = 0;
    for (let c = 0; c < P; c++) mean += centred[pair * P + c] / P;
    for (let c = 0; c < P; c++) centred[pair * P + c] -= mean;
  }
  const residue = (a: number, b: number, c: number) => (((a + b - c) % P) + P) % P;
  const sums = new Float64Array(P);
  for (let a = 0; a < P; a++)
    for (let b = 0; b < P; b++)
      for (let c = 0; c < P; c++) sums[residue(a, b, c)] += centred[(a * P + b) * P + c];
  const totalEnergy = centred.reduce((s, v) => s + v * v, 0);
  const norm = Math.sqrt((P * P * P) / 2);
  const wave = (k: number, kind: 'cos' | 'sin', r: number) =>
    (kind === 'cos' ? Math.cos : Math.sin)((2 * Math.PI * k * r) / P);
  const components = Array.from({ length: (P - 1) / 2 }, (_, i) => i + 1).flatMap((k) =>
    (['cos', 'sin'] as const).map((kind) => ({
      k,
      kind,
      coefficient: sums.reduce((s, value, r) => s + value * wave(k, kind, r), 0) / norm,
    })),
  );
  const energies = Array.from({ length: (P - 1) / 2 }, (_, i) =>
    components.filter((c) => c.k === i + 1).reduce((s, c) => s + c.coefficient ** 2, 0),
  );
  const largest = Math.max(...energies);
  const keyFrequencies = energies
    .map((e, i) => ({ e, k: i + 1 }))
    .filter(({ e }) => e >= 0.05 * largest)
    .map(({ k }) => k);
  const kept = components.filter((c) => keyFrequencies.includes(c.k));
  // The restricted logits as a function of r, then spread over (a, b, c).
  const byResidue = Float64Array.from({ length: P }, (_, r) =>
    kept.reduce((s, c) => s + (c.coefficient * wave(c.k, c.kind, r)) / norm, 0),
  );
  const restricted = new Float64Array(P * P * P);
  for (let a = 0; a < P; a++)
    for (let b = 0; b < P; b++)
      for (let c = 0; c < P; c++) restricted[(a * P + b) * P + c] = byResidue[residue(a, b, c)];
  const excluded = logits.map((v, i) => v - restricted[i]);
  return {
    keyFrequencies,
    restricted,
    excluded,
    varianceExplained: kept.reduce((s, c) => s + c.coefficient ** 2, 0) / totalEnergy,
    significantComponents: components.filter((c) => c.coefficient ** 2 >= 0.01 * totalEnergy)
      .length,
  };
}

/** Mean cross-entropy over the given pairs (index a·P + b) with label (a + b) mod P. */
function crossEntropy(logits: Float64Array, P: number, pairs: Int32Array): number {
  let total = 0;
  for (const pair of pairs) {
    const label = (Math.floor(pair / P) + (pair % P)) % P;
    let max = -Infinity;
    for (let c = 0; c < P; c++) max = Math.max(max, logits[pair * P + c]);
    let sum = 0;
    for (let c = 0; c < P; c++) sum += Math.exp(logits[pair * P + c] - max);
    total += max + Math.log(sum) - logits[pair * P + label];
  }
  return total / pairs.length;
}

/** Per unit: share of variance over the (a, b) grid explained by products of key-frequency (and constant) basis functions. */
function unitVarianceExplained(values: Tensor, P: number, keys: number[], axis: number): number[] {
  const rank = values.dims.length;
  const units = values.dims[axis];
  const positions = rank === 3 ? values.dims[1] : 1;
  const basis: Float64Array[] = [Float64Array.from({ length: P }, () => 1 / Math.sqrt(P))];
  for (const k of keys) {
    basis.push(
      Float64Array.from(
        { length: P },
        (_, a) => Math.sqrt(2 / P) * Math.cos((2 * Math.PI * k * a) / P),
      ),
    );
    basis.push(
      Float64Array.from(
        { length: P },
        (_, a) => Math.sqrt(2 / P) * Math.sin((2 * Math.PI * k * a) / P),
      ),
    );
  }
  return Array.from({ length: units }, (_, unit) => {
    const grid = new Float64Array(P * P); // unit's value at the last position for every (a, b)
    for (let pair = 0; pair < P * P; pair++)
      grid[pair] = Number(values.data[(pair * positions + positions - 1) * units + unit]);
    const mean = grid.reduce((s, v) => s + v, 0) / grid.length;
    const variance = grid.reduce((s, v) => s + (v - mean) ** 2, 0);
    if (variance === 0) return 0;
    // Coefficients on the orthonormal products f(a)·g(b), leaving out constant × constant (the mean).
    const rowProjection = basis.map((f) => {
      // [basis][b]: Σ_a f(a)·grid[a, b]
      const out = new Float64Array(P);
      for (let a = 0; a < P; a++) for (let b = 0; b < P; b++) out[b] += f[a] * grid[a * P + b];
      return out;
    });
    let explained = 0;
    rowProjection.forEach((row, i) =>
      basis.forEach((g, j) => {
        if (i === 0 && j === 0) return;
        let coefficient = 0;
        for (let b = 0; b < P; b++) coefficient += row[b] * g[b];
        explained += coefficient * coefficient;
      }),
    );
    return explained / variance;
  });
}
