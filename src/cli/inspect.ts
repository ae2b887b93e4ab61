import { Command } from 'commander';
import { InputError } from '../errors.ts';
import { readTable } from '../data/csv.ts';
import { NpyFile } from '../data/npy.ts';
import { requireLabels, requireRows } from '../data/validate.ts';
import { inspectModel, type InspectResult } from '../inspect/inspect.ts';
import type { FourierResult } from '../inspect/fourier.ts';
import { modelFourier } from '../inspect/model-fourier.ts';
import { percent } from '../stats.ts';
import { parseMetric } from '../inspect/metric.ts';
import { Model } from '../runtime/model.ts';
import type { Dataset } from '../runtime/run.ts';
import { jsonResult } from '../report/json.ts';
import { formatTable } from '../report/table.ts';
import { shapeString, sliceRows, type Tensor } from '../tensor.ts';
import {
  comparePatching,
  inputAttribution,
  type InputAttributionSummary,
  type PatchingComparison,
} from '../inspect/input-attribution.ts';
import { sequenceHooks } from '../inspect/sequence-hooks.ts';
import { DEFAULT_CARRIER_FRACTION } from '../inspect/carriers.ts';
import { attributeCarriers } from '../audit/attribute-carriers.ts';
import {
  SMOKE_EXAMPLES,
  cliProgress,
  collect,
  emitJson,
  numberOption,
  smokeMode,
  smokeOption,
  parseInputs,
  positiveInteger,
  routeOutput,
  runtimeOptions,
  withCommonOptions,
} from './options.ts';
import { datasetFromFiles } from '../inspect/inputs.ts';
import { print } from './io.ts';

export function inspectCommand(): Command {
  return withCommonOptions(
    new Command('inspect')
      .description(
        'Take a model apart over a dataset: census of every unit, its role, its importance (mean ablation) and the inputs that drive it.',
      )
      .argument('<model>', 'ONNX model file')
      .option(
        '--data <file>',
        'examples of a one-input model: .npy (first axis = examples) or .csv (features; with --label-column)',
      )
      .option(
        '--input <name=file.npy>',
        'examples of one model input (first axis = examples), for models with several inputs (e.g. input_ids and attention_mask); repeatable',
        collect,
      )
      .option(
        '--transform-input <name>',
        'the input --counterfactual transforms (default: the first); the others pass through unchanged',
      )
      .option('--labels <file.npy>', 'class of each example (int64)')
      .option('--label-column <name>', 'CSV data: the label column')
      .option(
        '--attribute <name=file.npy>',
        'a per-example attribute (integer categories: colour, group...) to find the units that encode it; repeatable',
        collect,
      )
      .option(
        '--hooks <pattern>',
        'hooks to inspect (default: every module hook); repeatable',
        collect,
      )
      .option(
        '--metric <metric>',
        'loss, accuracy, logit-diff:A,B or output-change (default: loss with labels, output-change without)',
      )
      .addOption(
        numberOption(
          '--fourier <P>',
          'periodic structure of a model on [a, b, =] tokens mod P (Nanda et al. 2023); --data optional',
          'positive integer',
        ),
      )
      .option(
        '--circuit',
        'find the smallest set of units that keeps the metric (greedy pruning with mean ablation)',
      )
      .addOption(
        numberOption(
          '--tolerance <x>',
          'circuit: allowed drop of faithfulness (circuit metric ÷ full metric)',
          'non-negative number',
          0.05,
        ),
      )
      .addOption(
        numberOption(
          '--circuit-examples <n>',
          'circuit: examples to score it on (N evenly spaced)',
          'positive integer',
          512,
        ),
      )
      .option(
        '--integrated-gradients',
        'integrated gradients of the label score with respect to the input (token models: the embedding), per input feature or position, with their completeness check',
      )
      .option(
        '--ig-at <input|hook>',
        'integrated gradients: the input or hook to attribute to (default: the first input, or the embedding of token ids)',
      )
      .option('--ig-baseline <zero|mean>', 'integrated gradients: the baseline input', 'zero')
      .addOption(
        numberOption(
          '--ig-steps <n>',
          'integrated gradients: points of the path integral',
          'positive integer',
          64,
        ),
      )
      .option(
        '--patch-from <file.npy>',
        'corrupted inputs (one per --data example): attribution patching next to exact activation patching, per sequence hook and position',
      )
      .addOption(
        numberOption(
          '--gradient-examples <n>',
          'integrated gradients and patching: the first N examples',
          'positive integer',
          128,
        ),
      )
      .option(
        '--counterfactual <name:transform>',
        'the units that carry an attribute: per hook, the --carrier-fraction of its units whose mean ablation most reduces the prediction flips under this transform (channel-swap, grayscale, noise, occlude; shuffle, set-to-mean, flip for a CSV column); repeatable',
        collect,
      )
      .addOption(
        numberOption(
          '--carrier-fraction <f>',
          "counterfactual: the share of each hook's units searched as carriers (at least one)",
          'non-negative number',
          DEFAULT_CARRIER_FRACTION,
        ),
      )
      .addOption(numberOption('--top <n>', 'units shown in the summary', 'positive integer', 10))
      .addOption(
        numberOption('--batch-size <n>', 'examples per onnxruntime run', 'positive integer', 256),
      )
      .addOption(smokeOption()),
    'write the full result as JSON (docs/json.md)',
  )
    .addHelpText(
      'after',
      `
A unit's importance is how much the metric drops when the unit is mean-ablated (by default the
mean increase in loss), with a 95% confidence interval over the examples.

Examples:
  teardown data mnist --flat --out digits
  teardown inspect examples/mnist-mlp.onnx --data digits/test.npy --labels digits/test-labels.npy --json inspect.json
  teardown inspect examples/modadd-113.onnx --fourier 113`,
    )
    .action(async (modelPath: string, options) => {
      routeOutput(options);
      const runtime = runtimeOptions(options);
      const metric = options.metric === undefined ? undefined : parseMetric(options.metric);
      const modulus =
        options.fourier === undefined ? undefined : positiveInteger(options.fourier, '--fourier');
      if (!options.data && !options.input && modulus === undefined)
        throw new InputError(
          'Give --data FILE (or --input NAME=FILE.npy per input) with the examples to inspect, or --fourier P for a modular-arithmetic model.',
        );
      const model = Model.load(modelPath, runtime);
      let result: InspectResult | undefined;
      if (options.data || options.input) {
        const loaded = loadData(model, options);
        // --smoke: the first examples only, labels and attributes cut alike.
        const smoke = smokeMode(options);
        const rows = smoke ? Math.min(SMOKE_EXAMPLES, loaded.data.examples) : loaded.data.examples;
        const data: Dataset = { examples: rows, read: loaded.data.read };
        const labels =
          loaded.labels && smoke
            ? sliceRows(loaded.labels, 0, Math.min(rows, loaded.labels.dims[0]))
            : loaded.labels;
        const attributes = new Map(
          Object.entries(parseInputs(options.attribute, '--attribute')).map(([name, file]) => [
            name,
            smoke ? file.readRows(0, Math.min(rows, file.rows)) : file.readAll(),
          ]),
        );
        const tolerance = Number(options.tolerance);
        if (!(tolerance >= 0 && tolerance < 1))
          throw new InputError(`--tolerance must lie in [0, 1), got '${options.tolerance}'.`);
        const circuit = options.circuit
          ? { tolerance, examples: positiveInteger(options.circuitExamples, '--circuit-examples') }
          : undefined;
        result = await inspectModel(model, data, labels, {
          hooks: options.hooks,
          attributes,
          metric,
          circuit,
          batchSize: options.batchSize,
          onProgress: cliProgress(options),
        });
        printSummary(model.path, result, positiveInteger(options.top, '--top'));
        for (const note of result.notes) print(`\nNote: ${note}`);
        const { featureNames } = loaded;
        Object.assign(result, await gradientMethods(model, data, labels, featureNames, options));
        if (options.counterfactual)
          Object.assign(result, {
            carriers: await carriersOf(
              model,
              data,
              result.hooks.map((hook) => hook.hook),
              featureNames,
              options,
            ),
          });
      }
      const fourier =
        modulus === undefined
          ? undefined
          : await fourierOfModel(model, modulus, options.hooks, cliProgress(options));
      if (options.json)
        emitJson(
          options.json,
          jsonResult(
            'inspect',
            { model: { path: model.path, sha256: model.file.sha256 }, threads: runtime.threads },
            { ...result, fourier },
          ),
        );
      await model.release();
    });
}

/** --integrated-gradients and --patch-from, on the first --gradient-examples examples. */
async function gradientMethods(
  model: Model,
  data: Dataset,
  labels: Tensor | undefined,
  featureNames: string[] | undefined,
  options: {
    integratedGradients?: boolean;
    igAt?: string;
    igBaseline: string;
    igSteps: string;
    patchFrom?: string;
    gradientExamples: string;
    hooks?: string[];
    quiet?: boolean;
  },
) {
  if (!options.integratedGradients && !options.patchFrom) return {};
  if (!labels)
    throw new InputError(
      "--integrated-gradients and --patch-from attribute the label's score: give --labels FILE.npy (or --label-column).",
    );
  const count = Math.min(
    data.examples,
    positiveInteger(options.gradientExamples, '--gradient-examples'),
  );
  const input = model.inputs[0].name;
  const sample = data.read(0, count);
  const sampleLabels = sliceRows(labels, 0, count);
  const extra: {
    integratedGradients?: InputAttributionSummary;
    attributionPatching?: PatchingComparison;
  } = {};
  if (options.integratedGradients) {
    if (options.igBaseline !== 'zero' && options.igBaseline !== 'mean')
      throw new InputError(`--ig-baseline must be zero or mean, got '${options.igBaseline}'.`);
    const ig = await inputAttribution(model, sample, sampleLabels, {
      at: options.igAt,
      baseline: options.igBaseline,
      steps: positiveInteger(options.igSteps, '--ig-steps'),
      featureNames,
      onProgress: cliProgress(options),
    });
    print(
      `\nIntegrated gradients of the label's score at '${ig.at}' (${ig.examples} examples, ${ig.baseline} baseline, ${ig.steps} steps; completeness error ${percent(ig.completenessError, 2)} of the mean score change)`,
    );
    print(
      formatTable(
        [
          ig.per === 'position' ? 'position' : 'input feature',
          'mean |attribution|',
          'mean attribution',
        ],
        ig.features
          .slice(0, 10)
          .map((f) => [f.feature, f.meanAbs.toPrecision(3), f.mean.toPrecision(3)]),
      ),
    );
    if (ig.channels)
      print(
        `Share of |attribution| per channel: ${ig.channels.map((share, c) => `${c}: ${percent(share)}`).join(', ')}`,
      );
    extra.integratedGradients = ig;
  }
  if (options.patchFrom) {
    const corruptedFile = new NpyFile(options.patchFrom);
    if (corruptedFile.rows !== data.examples)
      throw new InputError(
        `--patch-from '${options.patchFrom}' has ${corruptedFile.rows} examples but --data has ${data.examples}: give one corrupted input per example.`,
      );
    const hooks = await sequenceHooks(model, sample, options.hooks);
    // The corrupted run changes the first input only; the others (an attention mask) are the clean example's.
    const comparison = await comparePatching(
      model,
      sample,
      { ...sample, [input]: corruptedFile.readRows(0, count) },
      hooks,
      sampleLabels,
      { onProgress: cliProgress(options) },
    );
    print(
      `\nAttribution patching vs exact activation patching (${comparison.examples} examples; ${comparison.metric}: clean ${comparison.clean.toFixed(3)}, corrupted ${comparison.corrupted.toFixed(3)}): correlation ${comparison.correlation.toFixed(3)}, mean |error| ${comparison.meanAbsError.toFixed(4)} over ${comparison.rows.length} hook × position patches`,
    );
    const largest = [...comparison.rows]
      .sort((a, b) => Math.abs(b.exact - comparison.clean) - Math.abs(a.exact - comparison.clean))
      .slice(0, 8);
    print(
      formatTable(
        ['hook', 'position', 'exact', 'estimate'],
        largest.map((r) => [r.hook, String(r.position), r.exact.toFixed(4), r.estimate.toFixed(4)]),
      ),
    );
    extra.attributionPatching = comparison;
  }
  return extra;
}

/** --counterfactual: the carriers of each attribute in each inspected hook, on the first --gradient-examples examples. */
async function carriersOf(
  model: Model,
  data: Dataset,
  hooks: string[],
  featureNames: string[] | undefined,
  options: {
    counterfactual: string[];
    carrierFraction: number;
    gradientExamples: string;
    transformInput?: string;
    quiet?: boolean;
    smoke?: boolean;
  },
) {
  const count = Math.min(
    data.examples,
    positiveInteger(options.gradientExamples, '--gradient-examples'),
  );
  // --smoke: one carrier per hook (each is a sweep over every unit).
  const fraction = smokeMode(options) ? 0 : options.carrierFraction;
  const results = await attributeCarriers(
    model,
    data.read(0, count),
    hooks,
    options.counterfactual,
    {
      fraction,
      transformInput: options.transformInput,
      featureNames,
      onProgress: cliProgress(options),
    },
  );
  const share = fraction > 0 ? `${Number((100 * fraction).toFixed(1))}%` : 'one unit';
  print(
    `\nUnits that carry each attribute (per hook, the ${share} whose mean ablation most reduces prediction flips under the counterfactual; ${count} examples)`,
  );
  print(
    formatTable(
      [
        'attribute',
        'hook',
        'carriers',
        'flips: none',
        'carriers ablated',
        'random ablated',
        'direction projected out (its share)',
      ],
      results.map((r) => [
        `${r.attribute} (${r.transform})`,
        r.hook,
        r.units.map((u) => `#${u}`).join(' '),
        percent(r.flipRate.none),
        percent(r.flipRate.carriers),
        percent(r.flipRate.random),
        r.direction
          ? `${percent(r.direction.flipRate)} (${percent(r.direction.energyShare)})`
          : '—',
      ]),
    ),
  );
  return results;
}

/** The examples, their labels, and a CSV table's column names (read once). */
function loadData(
  model: Model,
  options: { data?: string; input?: string[]; labels?: string; labelColumn?: string },
): { data: Dataset; labels?: Tensor; featureNames?: string[] } {
  const input = model.inputs[0].name;
  let labels = options.labels ? new NpyFile(options.labels).readAll() : undefined;
  if (labels && options.labels)
    requireLabels(labels.data as ArrayLike<number | bigint>, `labels '${options.labels}'`);
  if (options.input) {
    if (options.data)
      throw new InputError(
        'Give the examples either with --data FILE (one-input models) or with --input NAME=FILE.npy per input, not both.',
      );
    if (options.labelColumn)
      throw new InputError(
        '--label-column applies to .csv --data; with --input give --labels FILE.npy.',
      );
    return { data: datasetFromFiles(model, parseInputs(options.input)), labels };
  }
  if (!options.data) throw new InputError('Give --data FILE or --input NAME=FILE.npy.');
  if (model.inputs.length !== 1)
    throw new InputError(
      `--data feeds a one-input model; this one has ${model.inputs.length} (${model.describeInputs()}): give each with --input NAME=FILE.npy.`,
    );
  if (options.data.endsWith('.csv')) {
    const table = readTable(options.data, { labelColumn: options.labelColumn });
    labels ??= table.labels;
    return {
      data: {
        examples: table.features.dims[0],
        read: (start, end) => ({ [input]: sliceRows(table.features, start, end) }),
      },
      labels,
      featureNames: table.featureNames,
    };
  }
  if (options.labelColumn)
    throw new InputError(
      '--label-column applies to .csv data; with .npy data give --labels FILE.npy.',
    );
  const file = new NpyFile(options.data);
  requireRows(file.rows, `--data '${options.data}'`);
  return {
    data: { examples: file.rows, read: (start, end) => ({ [input]: file.readRows(start, end) }) },
    labels,
  };
}

const SCORING = {
  example: 'one row of scores per example ([batch, classes])',
  last: "the last position of the model's per-position scores (one label per sequence)",
  every: 'every position (one label per position)',
} as const;

function printSummary(path: string, result: InspectResult, top: number): void {
  const metric =
    result.metric.kind === 'logit-diff'
      ? `logit ${result.metric.a} − logit ${result.metric.b}`
      : result.metric.kind;
  const importance =
    metric === 'output-change'
      ? 'the mean squared change of the output (no labels given)'
      : `drop in ${metric === 'loss' ? '−loss (i.e. increase in loss)' : metric}`;
  print(
    `${path}: ${result.examples} examples; importance = ${importance} when a unit is mean-ablated.`,
  );
  if (result.scoring) print(`Labels score ${SCORING[result.scoring]}.`);
  if (result.hookSource === 'nodes')
    print(
      `No module hooks (the node names carry no PyTorch module scopes): inspecting one hook per nonlinearity, last-axis Softmax and Add of two data-dependent values, named by the raw value each node produces.`,
    );
  const probeNames = Object.keys(result.hooks[0]?.probes ?? {});
  print(
    `\nHooks (linear probes: held-out accuracy of a ridge classifier on the hook, read where the labels are scored)\n${formatTable(
      [
        'hook',
        'shape',
        'units',
        'ablating the whole hook',
        'read at',
        ...probeNames.map((name) => `probe: ${name}`),
      ],
      result.hooks.map((hook) => [
        hook.hook,
        shapeString(hook.shape),
        String(hook.units),
        `${hook.wholeHook.importance.toFixed(4)} (95% CI ${hook.wholeHook.interval.map((v) => v.toFixed(4)).join(' … ')})`,
        hook.readAt === 'mean'
          ? hook.shape.length > 2
            ? 'mean'
            : '—'
          : hook.readAt === 'every'
            ? 'every position'
            : `position ${hook.readAt.position}`,
        ...probeNames.map((name) => percent(hook.probes[name])),
      ]),
    )}`,
  );
  print(
    `\nThe ${Math.min(top, result.units.length)} units that matter most\n${formatTable(
      [
        'unit',
        'importance (95% CI)',
        'grad × act',
        'responds to',
        'driven by inputs',
        'mean',
        'active',
      ],
      result.units
        .slice(0, top)
        .map((unit) => [
          `${unit.hook}#${unit.unit}`,
          `${unit.importance.toFixed(4)} (${unit.interval.map((v) => v.toFixed(4)).join(' … ')})`,
          unit.gradientTimesActivation === undefined
            ? '—'
            : unit.gradientTimesActivation.toFixed(3),
          [
            unit.role ? `class ${unit.role.label} (r = ${unit.role.correlation.toFixed(2)})` : '',
            ...Object.entries(unit.attributes ?? {}).map(
              ([name, role]) => `${name} ${role.label} (r = ${role.correlation.toFixed(2)})`,
            ),
          ]
            .filter(Boolean)
            .join('; ') || '—',
          unit.inputs ? unit.inputs.slice(0, 6).join(', ') || '—' : '—',
          unit.census.mean.toFixed(3),
          `${(100 * unit.census.fractionActive).toFixed(0)}%`,
        ]),
    )}`,
  );
  if (result.circuit) {
    const circuit = result.circuit;
    const total = result.hooks.reduce((sum, hook) => sum + hook.units, 0);
    print(
      `\nCircuit (${circuit.metric.kind}, ${circuit.examples} examples, tolerance ${circuit.tolerance}): ${circuit.units.length} of ${total} units keep ${percent(circuit.faithfulness)} of the full model's ${circuit.metric.kind} (${circuit.circuitMetric.toFixed(4)} vs ${circuit.fullMetric.toFixed(4)}) with every other unit mean-ablated:`,
    );
    print(`  ${circuit.units.map((unit) => `${unit.hook}#${unit.unit}`).join(', ')}`);
  }
  if (result.transformer?.logitLens.length) {
    print(
      `\nLogit lens (each layer's residual stream read through the model's own final layers)\n${formatTable(
        ['after', 'loss', 'accuracy'],
        result.transformer.logitLens.map((layer) => [
          layer.layer,
          layer.loss.toFixed(4),
          percent(layer.accuracy),
        ]),
      )}`,
    );
  }
  if (result.transformer?.attention.length) {
    print(
      `\nAttention heads (mean over queries)\n${formatTable(
        ['head', 'entropy', 'to itself', 'to previous', 'to first'],
        result.transformer.attention.map((head) => [
          `${head.hook}#${head.head}`,
          head.entropy.toFixed(2),
          percent(head.self),
          percent(head.previous),
          percent(head.first),
        ]),
      )}`,
    );
  }
  const attribution = result.transformer?.logitAttribution;
  if (attribution) {
    print(
      `\nDirect logit attribution to the label's logit (mean over examples; ${attribution.exact ? 'exact: no final LayerNorm' : 'approximate: through the final LayerNorm'}; the rest ${attribution.bias.toFixed(3)} is the unembedding bias)\n${formatTable(
        ['component', 'contribution'],
        attribution.components.map((c) => [c.component, c.contribution.toFixed(3)]),
      )}`,
    );
  }
  const dead = result.units.filter((unit) => unit.census.dead).length;
  if (dead) print(`\n${dead} unit(s) never fired (dead) on these examples.`);
}

/** --fourier P: the periodic structure of a modular-addition model (inspect/model-fourier.ts), printed. */
async function fourierOfModel(
  model: Model,
  modulus: number,
  hooks: string[] | undefined,
  onProgress?: ReturnType<typeof cliProgress>,
): Promise<FourierResult> {
  const {
    fourier: result,
    trainPairs,
    keyEnergyShare,
  } = await modelFourier(model, modulus, { hooks, onProgress });
  print(
    `\nFourier structure mod ${modulus} (Nanda et al. 2023), scored on ${trainPairs ? `the model's ${trainPairs.length} training pairs (from its training spec)` : `all ${modulus * modulus} pairs (no training spec in the model)`}:`,
  );
  print(
    `  key frequencies ${result.keyFrequencies.join(', ')}: ${percent(keyEnergyShare)} of the embedding's energy, ${percent(result.varianceExplained)} of the logits' variance`,
  );
  print(
    formatTable(
      ['logits', 'loss'],
      [
        ['full model', result.loss.full.toPrecision(4)],
        ['key frequencies only (restricted)', result.loss.restricted.toPrecision(4)],
        ['key frequencies removed (excluded)', result.loss.excluded.toPrecision(4)],
      ],
    ).replace(/^/gm, '  '),
  );
  for (const [hook, shares] of Object.entries(result.units)) {
    print(
      `  ${hook}: key-frequency products explain ${percent(shares.reduce((a, b) => a + b, 0) / shares.length)} of a unit's variance on average`,
    );
  }
  return result;
}
