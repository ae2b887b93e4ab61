import { Command, Option } from 'commander';
import { counterfactualReaudit, tryFixes, type FixesResult, type FixPlan } from '../audit/fixes.ts';
import { chooseFixAttribute, chooseFixPlan } from '../audit/fix-choice.ts';
import type { RuntimeOptions } from '../runtime/session.ts';
import { readTrainSpecFile } from '../train/read-spec.ts';
import { InputError } from '../errors.ts';
import { auditModel, shortcutVerdict, type AuditResult } from '../audit/audit.ts';
import { loadConfig, type AuditConfig } from '../audit/config.ts';
import { checkInputs, loadAuditData, type AuditData, type DataSpec } from '../audit/data.ts';
import { firstExamples } from '../audit/first-examples.ts';
import { gate, type Finding, type Gate, type Severity } from '../audit/findings.ts';
import type { Counterfactual } from '../audit/shortcut.ts';
import { auditCounterfactuals } from '../audit/counterfactuals.ts';
import { Model } from '../runtime/model.ts';
import { jsonResult } from '../report/json.ts';
import type { ProgressEvent } from '../progress.ts';
import { formatTable } from '../report/table.ts';
import { writeReport } from '../report/html.ts';
import { percent } from '../stats.ts';
import {
  SMOKE_EXAMPLES,
  cliProgress,
  collect,
  emitJson,
  numberOption,
  routeOutput,
  runtimeOptions,
  smokeMode,
  smokeOption,
  splitAssignment,
  withCommonOptions,
} from './options.ts';
import { SMOKE_STEPS } from './train.ts';
import { print, setExitCode } from './io.ts';

export function auditCommand(): Command {
  return withCommonOptions(
    new Command('audit')
      .description(
        'Check a classifier before deployment: shortcut reliance (counterfactual), shortcut features, weak segments, calibration, robustness and shift — each finding with its effect, confidence and the units that carry it.',
      )
      .argument(
        '<model>',
        'ONNX classifier (first output: class scores [batch, classes], or one logit); any number of inputs',
      )
      .option(
        '--data <file>',
        'examples of a one-input model: .npy, or .csv features (with --label-column)',
      )
      .option(
        '--input <name=file.npy>',
        'a model input (first axis = examples), for models with several inputs: give every input; repeatable',
        collect,
      )
      .option(
        '--transform-input <name>',
        'with --input: the input that counterfactuals and perturbations change (default: the first); the others pass through with their row',
      )
      .option('--labels <file.npy>', 'class of each example (integers)')
      .option('--label-column <name>', 'CSV data: the label column')
      .option(
        '--attribute <name=file.npy|column>',
        'a per-example attribute (colour, group...), or a column of CSV data; repeatable',
        collect,
      )
      .option(
        '--counterfactual <name:transform>',
        'change an attribute and nothing else: channel-swap, grayscale, noise, occlude (images); shuffle, set-to-mean, flip (a table column); repeatable',
        collect,
      )
      .option('--shifted <file>', 'a shifted or deployment set, same format as --data')
      .option('--shifted-labels <file.npy>', 'labels of the shifted set (.npy data)')
      .option(
        '--shifted-input <name=file.npy>',
        'with --input: a model input of the shifted set; repeatable',
        collect,
      )
      .option(
        '--shifted-attribute <name=file.npy>',
        'an attribute of the shifted set (.npy data); repeatable',
        collect,
      )
      .option(
        '--hooks <pattern>',
        'hooks searched for the units that carry a shortcut (default: activation modules); repeatable',
        collect,
      )
      .option(
        '--try-fixes',
        'retrain with group-balanced reweighting, Just-Train-Twice and IRMv1 and measure each in and out of distribution (a model teardown did not train is fine-tuned from its own weights on the audit data)',
      )
      .option(
        '--train-spec <file.json>',
        'the training spec to retrain from (models trained by teardown carry theirs; without one the model is fine-tuned)',
      )
      .option('--config <file.json>', 'thresholds and detector settings (docs/audit.md)')
      .addOption(
        new Option(
          '--fail-on <severity>',
          'exit with status 3 when a finding at or above this severity exists',
        ).choices(['low', 'medium', 'high']),
      )
      .option('--report <dir>', 'write a self-contained HTML report to DIR/index.html')
      .addOption(
        numberOption('--batch-size <n>', 'examples per onnxruntime run', 'positive integer', 512),
      )
      .addOption(smokeOption()),
    'write the findings and evidence as JSON (docs/json.md)',
  )
    .addHelpText(
      'after',
      `
Severity: high when the effect (flip rate, accuracy or calibration gap) is ≥ 20 points and
significant at 1% after Holm's correction over every test of the audit; medium when ≥ 5 points
and significant; low when significant but smaller (thresholds: --config, docs/audit.md).

Examples:
  teardown data colored-mnist --out cmnist
  teardown train --task colored-mnist --model mlp:hidden=128-128 --epochs 5 --out cmnist/erm.onnx
  teardown audit cmnist/erm.onnx --data cmnist/train.npy --labels cmnist/train-labels.npy --attribute color=cmnist/train-color.npy \\
    --counterfactual color:channel-swap --shifted cmnist/test.npy --shifted-labels cmnist/test-labels.npy --report report
  teardown audit test/fixtures/multi-input/model.onnx --input input_ids=test/fixtures/multi-input/input_ids.npy \\
    --input attention_mask=test/fixtures/multi-input/attention_mask.npy --input features=test/fixtures/multi-input/features.npy \\
    --labels test/fixtures/multi-input/labels.npy --attribute group=test/fixtures/multi-input/group.npy
(--fail-on high: exit status 3 when a high finding exists, to gate a deployment in CI.)`,
    )
    .action(async (modelPath: string, options) => {
      routeOutput(options);
      const runtime = runtimeOptions(options);
      const config = smokeMode(options)
        ? smokeConfig(loadConfig(options.config))
        : loadConfig(options.config);
      const model = Model.load(modelPath, runtime);
      const smoke = smokeMode(options);
      const loaded = loadAuditData({
        ...examplesSpec(options, model),
        labels: options.labels,
        labelColumn: options.labelColumn,
        attributes: options.attribute,
      });
      checkInputs(model, loaded);
      const data = smoke ? firstExamples(loaded, SMOKE_EXAMPLES) : loaded;
      const shifted =
        options.shifted || options.shiftedInput ? loadShifted(options, data, model) : undefined;
      if (!shifted && (options.shiftedLabels || options.shiftedAttribute))
        throw new InputError(
          '--shifted-labels and --shifted-attribute describe a shifted set: give it with --shifted FILE (or --shifted-input NAME=FILE.npy for each input).',
        );
      const { counterfactuals, notes } = auditCounterfactuals(options.counterfactual ?? [], data);
      for (const note of notes) print(`Note: ${note}`);
      const plan = options.tryFixes
        ? chooseFixPlan(
            model,
            options.trainSpec ? readTrainSpecFile(options.trainSpec) : undefined,
            data,
            shifted,
            {
              labels: options.labels,
              labelColumn: options.labelColumn,
              inputs: options.input ? namedFiles(options.input, '--input') : undefined,
            },
          )
        : undefined;
      const result = await auditModel(model, data, {
        config,
        counterfactuals,
        shifted,
        hooks: options.hooks,
        batchSize: options.batchSize,
        onProgress: cliProgress(options),
      });
      printAudit(model.path, result);
      const reaudit = { data, counterfactuals, seed: config.seed, batchSize: options.batchSize };
      const fixes = plan
        ? await runFixes(model, plan, result, runtime, reaudit, {
            onProgress: cliProgress(options),
            maxSteps: smokeMode(options) ? SMOKE_STEPS : undefined,
          })
        : undefined;
      if (options.report)
        print(
          `\nReport: ${await writeReport(options.report, { model: { path: model.path, sha256: model.file.sha256 }, result, data, shifted, fixes })}`,
        );
      const verdict = options.failOn
        ? gate(result.findings, options.failOn as Severity)
        : undefined;
      if (options.json)
        emitJson(
          options.json,
          jsonResult(
            'audit',
            {
              model: { path: model.path, sha256: model.file.sha256 },
              threads: runtime.threads,
              seeds: { audit: config.seed },
            },
            { ...result, fixes, ...(verdict && { gate: verdict }) },
          ),
        );
      await model.release();
      if (verdict) printGate(verdict);
      if (verdict?.exitCode) setExitCode(verdict.exitCode);
    });
}

/** --try-fixes: the fixes grouped by the attribute fix-choice.ts picks, re-audited, printed. */
async function runFixes(
  model: Model,
  plan: FixPlan,
  result: AuditResult,
  runtime: RuntimeOptions,
  audit: { data: AuditData; counterfactuals: Counterfactual[]; seed: number; batchSize: number },
  options: { onProgress?: (event: ProgressEvent) => void; maxSteps?: number },
): Promise<FixesResult> {
  const { attribute: shortcut, counterfactual } = chooseFixAttribute(
    plan,
    result.findings,
    audit.counterfactuals,
  );
  const what = plan.fromAudited
    ? `fine-tuning ${model.path} from its own weights`
    : plan.spec.from
      ? `fine-tuning ${plan.spec.from.path}`
      : `retraining ${plan.spec.model}`;
  print(`\nTrying fixes: ${what} on ${plan.spec.task} three ways, grouped by '${shortcut}'.`);
  const reaudit =
    counterfactual &&
    counterfactualReaudit(audit.data, counterfactual, audit.seed, audit.batchSize);
  const fixes = await tryFixes(
    model,
    plan,
    shortcut,
    runtime,
    fixRowProgress(options.onProgress),
    reaudit,
    options,
  );
  const flips = counterfactual ? [`flips (${shortcut}:${counterfactual.transform})`] : [];
  print(
    formatTable(
      ['training', 'in distribution', 'out of distribution', ...flips, 'settings', 'time'],
      fixes.rows.map((row) => [
        row.method,
        percent(row.inDistribution),
        percent(row.outOfDistribution),
        ...(counterfactual ? [percent(row.flipRate!)] : []),
        row.settings,
        `${row.seconds.toFixed(1)} s`,
      ]),
    ),
  );
  return fixes;
}

/** The rows of tryFixes as progress: the audited model, then each of the three retrainings. */
export function fixRowProgress(onProgress: ((event: ProgressEvent) => void) | undefined) {
  let done = 0;
  return (row: { method: string }) =>
    onProgress?.({ task: 'fixes', done: ++done, total: 4, status: row.method });
}

/** --smoke: one carrier unit per hook, searched on 64 examples. */
export function smokeConfig(config: AuditConfig): AuditConfig {
  return { ...config, units: { fraction: 0, examples: 64 } };
}

/** --data FILE for a one-input model, or every input by name (--input NAME=FILE.npy) and the one transforms change. */
function examplesSpec(
  options: { data?: string; input?: string[]; transformInput?: string },
  model: Model,
): DataSpec {
  if (options.data && options.input)
    throw new InputError(
      'Give the examples either with --data FILE (one-input models) or with --input NAME=FILE.npy for every input, not both.',
    );
  if (!options.data && !options.input) {
    throw new InputError(
      model.inputs.length > 1
        ? `'${model.path}' has ${model.inputs.length} inputs (${model.describeInputs()}): give the examples of each with --input NAME=FILE.npy.`
        : 'Give the examples with --data FILE (.npy, or .csv with --label-column).',
    );
  }
  if (options.data) {
    if (options.transformInput)
      throw new InputError(
        '--transform-input picks one of several --input files: with --data the one input is the one transformed.',
      );
    return { data: options.data };
  }
  return {
    inputs: namedFiles(options.input!, '--input'),
    transformInput: options.transformInput ?? model.inputs[0].name,
  };
}

function namedFiles(specs: string[], flag: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const spec of specs) {
    const [name, path] = splitAssignment(spec, flag, 'attention_mask=mask.npy');
    if (name in files)
      throw new InputError(`${flag} '${name}' is given twice: give each input once.`);
    files[name] = path;
  }
  return files;
}

function loadShifted(
  options: {
    smoke?: boolean;
    shifted?: string;
    shiftedInput?: string[];
    shiftedLabels?: string;
    labelColumn?: string;
    shiftedAttribute?: string[];
  },
  data: AuditData,
  model: Model,
): AuditData {
  const columns = data.attributes.filter((a) => a.column !== undefined).map((a) => a.name);
  const attributes = [...columns, ...(options.shiftedAttribute ?? [])];
  const named = data.inputs.input !== undefined;
  if (named && !options.shiftedInput)
    throw new InputError(
      'The examples were given with --input: give the shifted set the same way, --shifted-input NAME=FILE.npy for every input.',
    );
  if (!named && options.shiftedInput)
    throw new InputError(
      '--shifted-input goes with --input; the examples were given with --data: give the shifted set with --shifted FILE.',
    );
  if (named && options.shifted)
    throw new InputError(
      'Give the shifted set either with --shifted FILE or with --shifted-input NAME=FILE.npy for every input, not both.',
    );
  const spec: DataSpec = named
    ? {
        inputs: namedFiles(options.shiftedInput!, '--shifted-input'),
        transformInput: data.inputs.input,
      }
    : {
        data: options.shifted,
        labelColumn: options.shifted!.endsWith('.csv') ? options.labelColumn : undefined,
      };
  const shifted = loadAuditData(
    { ...spec, labels: options.shiftedLabels, attributes },
    '--shifted',
  );
  checkInputs(model, shifted, '--shifted');
  if (smokeMode(options)) return firstExamples(shifted, SMOKE_EXAMPLES);
  const expected = data.inputs.dims.join(', ');
  if (shifted.inputs.dims.join(', ') !== expected)
    throw new InputError(
      `--shifted '${shifted.path}' has examples of shape [${shifted.inputs.dims.join(', ')}] but --data has [${expected}]: give both sets in the same format.`,
    );
  return shifted;
}

export function printAudit(path: string, result: AuditResult): void {
  const { data, shifted } = result.accuracy;
  const inputs =
    result.data.inputs && result.data.inputs.length > 1
      ? ` (input '${result.data.inputs[0]}'; ${result.data.inputs
          .slice(1)
          .map((name) => `'${name}'`)
          .join(', ')} passed through with each row)`
      : '';
  print(
    `\n${path}: audited on ${result.data.examples} examples of '${result.data.path}'${inputs}${result.shifted ? ` and ${result.shifted.examples} shifted examples of '${result.shifted.path}'` : ''}.`,
  );
  print(
    `Accuracy ${percent(data.value)} (95% CI ${percent(data.interval[0])}–${percent(data.interval[1])})${shifted ? `; on the shifted set ${percent(shifted.value)} (${percent(shifted.interval[0])}–${percent(shifted.interval[1])})` : ''}.`,
  );
  const counts = (['high', 'medium', 'low'] as const)
    .map((s) => `${result.findings.filter((f) => f.severity === s).length} ${s}`)
    .join(', ');
  print(
    `${result.findings.length} finding(s): ${counts}; ${result.tests} tests, Holm-corrected at ${result.config.alpha}.`,
  );
  if (result.findings.length) {
    print(
      `\n${formatTable(
        ['severity', 'detector', 'finding', 'effect (pts)', 'adj. p'],
        result.findings.map((f: Finding) => [
          f.severity.toUpperCase(),
          f.detector,
          f.title,
          f.effect.toFixed(1),
          f.adjustedP < 1e-4 ? '<1e-4' : f.adjustedP.toFixed(4),
        ]),
      )}`,
    );
  }
  for (const units of result.shortcutUnits) {
    const row = (name: string, key: 'none' | 'carriers' | 'random') => [
      name,
      percent(units.accuracy.data[key]),
      units.accuracy.shifted ? percent(units.accuracy.shifted[key]) : '—',
    ];
    print(
      `\nThe units that carry '${units.shortcut}': ${units.hook} #${units.units.join(', #')} (${units.units.length} of ${units.width}; mean-ablating them cuts the counterfactual flip rate from ${percent(units.flipRate.none)} to ${percent(units.flipRate.carriers)}, as many random units: ${percent(units.flipRate.random)}).`,
    );
    print(
      formatTable(
        ['mean-ablated', 'accuracy (audit data)', 'accuracy (shifted)'],
        [
          row('nothing', 'none'),
          row(`the ${units.units.length} carriers`, 'carriers'),
          row(`${units.units.length} random units`, 'random'),
        ],
      ),
    );
    const verdict = shortcutVerdict(units);
    const direction = units.direction;
    if (direction) {
      const shifted = direction.accuracy.shifted
        ? `, shifted ${percent(direction.accuracy.shifted.none)} → ${percent(direction.accuracy.shifted.projected)}`
        : '';
      print(
        `One direction of ${units.hook} holds ${percent(direction.energyShare)} of how the counterfactual moves it; projecting it out (mean ablation along it) cuts the flips from ${percent(direction.flipRate.none)} to ${percent(direction.flipRate.projected)}: accuracy on the audit data ${percent(direction.accuracy.data.none)} → ${percent(direction.accuracy.data.projected)}${shifted}.`,
      );
    }
    if (verdict.spread)
      print(
        `The shortcut is spread over many units: these ${units.units.length} remove only ${percent(verdict.flipsRemoved)} of the counterfactual flips${verdict.inDirection ? ', while one direction carries most of it' : ''}. Neither edit is a fix (see the accuracies): retraining is (--try-fixes).`,
      );
  }
  for (const note of result.notes) print(`\nNote: ${note}`);
  if (!result.findings.length) print('\nNo detector found a significant problem.');
}

/** --fail-on: the findings that tripped the gate, one line each, or that none did. */
export function printGate(verdict: Gate): void {
  const { failOn, tripped, exitCode } = verdict;
  if (!tripped.length) {
    print(`\n--fail-on ${failOn}: no finding at or above '${failOn}'; exit status ${exitCode}.`);
    return;
  }
  const count = `${tripped.length} finding(s) at or above '${failOn}'`;
  print(`\n--fail-on ${failOn}: ${count} tripped the gate; exiting with status ${exitCode}:`);
  for (const { severity, detector, title } of tripped) {
    print(`  ${severity.toUpperCase()}  ${detector}  ${title}`);
  }
}
