/**
 * Op coverage over exported models (scripts/op-coverage.sh): for each model in a folder of
 * <name>.onnx + <name>.json (export_torchvision.py), the ops that have neither a gradient rule nor
 * a place in the no-gradient list, and — for the models named by --build, exported with their
 * weights and every op covered — whether the gradient graph of a cross-entropy loss with respect
 * to the input and every parameter builds and runs (a rule may refuse a configuration by name).
 * This checks that rules exist and apply, not their numbers: the rule tests and the corpus are the
 * numeric oracles.
 *
 *   node --import tsx scripts/op-coverage/check.ts MODELS_DIR [--build NAME,NAME,...] > table.md
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { computeGradients } from '../../src/autodiff/gradients.ts';
import { NO_GRADIENT, RULES } from '../../src/autodiff/rules/index.ts';
import { readModelFile } from '../../src/onnx/model-file.ts';
import type { GraphProto } from '../../src/onnx/proto.ts';
import { seededRandom } from '../../src/random.ts';
import { Model } from '../../src/runtime/model.ts';
import { tensor } from '../../src/tensor.ts';

interface ExportRecord {
  input?: number[];
  weights?: boolean;
  params?: number;
  error?: string;
}

/** Every node's op type, subgraphs included, prefixed by its domain when not ai.onnx. */
function opTypes(graph: GraphProto): string[] {
  return graph.node.flatMap((node) => [
    node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.opType}` : node.opType,
    ...node.attribute
      .flatMap((attribute) => [...(attribute.g ? [attribute.g] : []), ...(attribute.graphs ?? [])])
      .flatMap(opTypes),
  ]);
}

/** '' when the gradient graph builds and runs, else the first line of the error. */
async function gradientProblem(path: string, inputDims: number[]): Promise<string> {
  const model = Model.load(path, { threads: 1 });
  try {
    const random = seededRandom(3);
    const x = tensor(
      'float32',
      inputDims,
      Array.from({ length: inputDims.reduce((a, b) => a * b, 1) }, () => random()),
    );
    const { loss } = await computeGradients(
      model,
      { x },
      tensor('int64', [inputDims[0]], new Array(inputDims[0]).fill(0)),
      { loss: { kind: 'cross-entropy' }, wrt: ['input', 'params'] },
    );
    return Number.isFinite(loss) ? '' : `loss ${loss}`;
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message.split('\n')[0]}`;
  } finally {
    await model.release();
  }
}

async function main(dir: string, build: Set<string> | undefined): Promise<void> {
  const names = readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .map((file) => file.slice(0, -5))
    .sort();
  const rows: string[] = [];
  const uncovered = new Map<string, string[]>();
  let built = 0;
  for (const name of names) {
    const record = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as ExportRecord;
    if (record.error) {
      rows.push(
        `| ${name} | — | — | export failed: ${record.error.replace(/\|/g, '\\|').slice(0, 160)} | — |`,
      );
      continue;
    }
    const path = join(dir, `${name}.onnx`);
    const ops = [...new Set(opTypes(readModelFile(path).proto.graph))].sort();
    const missing = ops.filter((op) => !(op in RULES) && !NO_GRADIENT.has(op));
    for (const op of missing) uncovered.set(op, [...(uncovered.get(op) ?? []), name]);
    let gradient = 'not built (exported without weights)';
    if (missing.length > 0) gradient = 'not built (ops without a rule)';
    else if (build && !build.has(name))
      gradient = record.weights
        ? 'not built (its family is built once, at its smallest)'
        : gradient;
    else if (record.weights) {
      const problem = await gradientProblem(path, record.input!);
      gradient = problem ? problem.replace(/\|/g, '\\|').slice(0, 200) : 'builds and runs';
      if (!problem) built++;
    }
    rows.push(
      `| ${name} | ${record.input!.slice(2).join('×')} | ${ops.length} | ${missing.length ? missing.join(', ') : 'none'} | ${gradient} |`,
    );
    process.stderr.write(`${name}: ${missing.join(' ') || 'covered'}; ${gradient}\n`);
  }
  const lines = [
    `${names.length} models; ${names.length - rows.filter((row) => row.includes('export failed')).length} exported; ${[...uncovered.keys()].length} ops without a rule; gradient graph built and run for ${built}.`,
    '',
    '| model | image | ops | ops without a gradient rule | gradient graph (input and parameters) |',
    '|---|---|---|---|---|',
    ...rows,
  ];
  if (uncovered.size > 0)
    lines.push(
      '',
      '| op without a rule | models |',
      '|---|---|',
      ...[...uncovered].map(([op, models]) => `| ${op} | ${models.join(', ')} |`),
    );
  process.stdout.write(`${lines.join('\n')}\n`);
}

const buildFlag = process.argv.indexOf('--build');
await main(
  process.argv[2] ?? '/tmp/teardown-op-coverage',
  buildFlag > 0 ? new Set(process.argv[buildFlag + 1].split(',')) : undefined,
);
