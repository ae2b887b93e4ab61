/**
 * A sweep's spec (SPEC.json of `teardown sweep`): the parameters searched, how configurations are
 * drawn, how many seeds each gets, what a trial runs and how its result is judged. Read and checked
 * here; every refusal is an InputError that names the field.
 *
 *   {
 *     "parameters": { "lr": { "log": [1e-4, 1e-1] }, "hidden": { "int": [8, 64] },
 *                     "act": { "values": ["relu", "tanh"] } },
 *     "sampler": "sobol", "configurations": 16, "seeds": 5,
 *     "metric": "testAccuracy", "direction": "maximize", "success": 0.9,
 *     "train": { "task": "mnist", "model": "mlp:hidden={hidden},act={act}", "steps": 200 }
 * (a training spec as `teardown train --train-spec` reads it, train/read-spec.ts),
 *   }
 * or, for a user's own training script, "command": "python3 train.py --lr {lr} --seed {seed}".
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError } from '../errors.ts';

export type ParameterValue = number | string | boolean;

export type Parameter =
  | { name: string; kind: 'log' | 'range' | 'int'; low: number; high: number }
  | { name: string; kind: 'values'; values: ParameterValue[] };

export type Sampler = 'grid' | 'random' | 'sobol';

/** A trial: teardown's own training, or an external command (one shell line or an argv array). */
export type TrialTemplate =
  | { kind: 'train'; train: Record<string, unknown> }
  | { kind: 'command'; command: string | string[]; cwd: string };

export interface SweepSpec {
  parameters: Parameter[];
  sampler: Sampler;
  /** Configurations drawn (grid: the product of the levels). */
  configurations: number;
  /** Grid points of each numeric parameter (grid sampler). */
  levels: number;
  /** Seed of the random sampler. */
  samplerSeed: number;
  /** Seeds per configuration: each runs with seeds firstSeed … firstSeed + seeds − 1. */
  seeds: number;
  /** The first trial seed (default 0; absent from a spec that does not give it). */
  firstSeed?: number;
  metric: string;
  direction: 'maximize' | 'minimize';
  /** A trial succeeds when its metric is ≥ this (maximize) or ≤ it (minimize). */
  success: number;
  /** Seconds a trial may run before it is stopped and recorded as failed. */
  timeoutSeconds: number;
  trial: TrialTemplate;
}

const FIELDS = [
  'parameters',
  'sampler',
  'configurations',
  'levels',
  'samplerSeed',
  'seeds',
  'firstSeed',
  'metric',
  'direction',
  'success',
  'timeout',
  'train',
  'command',
  'cwd',
];
export const DEFAULT_SEEDS = 5;
export const DEFAULT_LEVELS = 3;
export const DEFAULT_TIMEOUT_SECONDS = 3600;
/** Trials one sweep may plan (every one is a row of the store from the start). */
export const MAX_TRIALS = 1_000_000;
/** Placeholder names a trial template may hold besides the parameters. */
export const RESERVED_PLACEHOLDERS = ['seed'];

/** Reads and checks SPEC.json; a command's working folder defaults to the spec's folder. */
export function readSweepSpec(path: string): SweepSpec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new InputError(`Sweep spec '${path}' cannot be read: check the path.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InputError(`Sweep spec '${path}' is not JSON: ${(error as Error).message}.`);
  }
  return parseSweepSpec(json, dirname(resolve(path)));
}

/** Checks a spec given as a value; `base` is the folder relative paths start from. */
export function parseSweepSpec(json: unknown, base = process.cwd()): SweepSpec {
  const spec = object(json, 'the sweep spec');
  const unknown = Object.keys(spec).filter((key) => !FIELDS.includes(key));
  if (unknown.length > 0) {
    throw new InputError(
      `Sweep spec field '${unknown[0]}' is not known: the fields are ${FIELDS.join(', ')}.`,
    );
  }
  const parameters = Object.entries(object(spec.parameters, "field 'parameters'")).map(
    ([name, value]) => parseParameter(name, value),
  );
  if (parameters.length === 0) throw new InputError("Sweep spec field 'parameters' is empty.");
  const sampler = oneOf(spec.sampler ?? 'sobol', 'sampler', ['grid', 'random', 'sobol']);
  const levels = integer(spec.levels ?? DEFAULT_LEVELS, 'levels', 2);
  const gridSize = parameters.reduce((n, p) => n * gridLevels(p, levels), 1);
  const configurations =
    sampler === 'grid'
      ? gridConfigurations(spec.configurations, gridSize)
      : integer(required(spec, 'configurations'), 'configurations', 1);
  const result: SweepSpec = {
    parameters,
    sampler,
    configurations,
    levels,
    samplerSeed: integer(spec.samplerSeed ?? 0, 'samplerSeed', 0),
    seeds: integer(spec.seeds ?? DEFAULT_SEEDS, 'seeds', 1),
    ...(spec.firstSeed === undefined ? {} : { firstSeed: integer(spec.firstSeed, 'firstSeed', 0) }),
    metric: text(required(spec, 'metric'), 'metric'),
    direction: oneOf(spec.direction ?? 'maximize', 'direction', ['maximize', 'minimize']),
    success: finite(required(spec, 'success'), 'success'),
    timeoutSeconds: timeout(spec.timeout ?? DEFAULT_TIMEOUT_SECONDS),
    trial: parseTrial(spec, base),
  };
  checkPlaceholders(result);
  if (result.configurations * result.seeds > MAX_TRIALS) {
    throw new InputError(
      `Sweep spec: ${result.configurations} configurations × ${result.seeds} seeds make ` +
        `${result.configurations * result.seeds} trials, more than ${MAX_TRIALS}: ` +
        "lower 'configurations', 'levels' or 'seeds'.",
    );
  }
  return result;
}

/** Grid points of one parameter: every value, `levels` numbers, or every integer when fewer. */
export function gridLevels(parameter: Parameter, levels: number): number {
  if (parameter.kind === 'values') return parameter.values.length;
  if (parameter.kind === 'int') return Math.min(levels, parameter.high - parameter.low + 1);
  return levels;
}

function gridConfigurations(given: unknown, gridSize: number): number {
  if (given !== undefined && given !== gridSize) {
    throw new InputError(
      `Sweep spec field 'configurations' is ${JSON.stringify(given)}, but the grid holds ` +
        `${gridSize} configurations (the product of the levels): leave it out or give ${gridSize}.`,
    );
  }
  return gridSize;
}

function parseParameter(name: string, value: unknown): Parameter {
  const field = `parameters.${name}`;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || RESERVED_PLACEHOLDERS.includes(name)) {
    throw new InputError(
      `Sweep spec parameter '${name}': a name is letters, digits and _ (not 'seed', which the ` +
        'sweep sets).',
    );
  }
  const body = object(value, `field '${field}'`);
  const kinds = Object.keys(body);
  if (kinds.length !== 1 || !['log', 'range', 'int', 'values'].includes(kinds[0])) {
    throw new InputError(
      `Sweep spec field '${field}' must be one of {"log": [lo, hi]}, {"range": [lo, hi]}, ` +
        `{"int": [lo, hi]} or {"values": [...]}, got ${JSON.stringify(value)}.`,
    );
  }
  const kind = kinds[0] as Parameter['kind'];
  if (kind === 'values') {
    const values = body.values;
    if (!Array.isArray(values) || values.length === 0 || !values.every(isValue)) {
      throw new InputError(
        `Sweep spec field '${field}.values' must be a non-empty array of numbers, strings or booleans.`,
      );
    }
    return { name, kind, values };
  }
  return { name, kind, ...bounds(body[kind], `${field}.${kind}`, kind) };
}

function bounds(value: unknown, field: string, kind: 'log' | 'range' | 'int') {
  if (!Array.isArray(value) || value.length !== 2 || !value.every((x) => Number.isFinite(x))) {
    throw new InputError(
      `Sweep spec field '${field}' must be [low, high] (two numbers), got ${JSON.stringify(value)}.`,
    );
  }
  const [low, high] = value as [number, number];
  if (!(low < high))
    throw new InputError(`Sweep spec field '${field}': low (${low}) must be below high (${high}).`);
  if (kind === 'log' && !(low > 0))
    throw new InputError(`Sweep spec field '${field}': a log range needs low > 0, got ${low}.`);
  if (kind === 'int' && !(Number.isInteger(low) && Number.isInteger(high))) {
    throw new InputError(
      `Sweep spec field '${field}': an int range needs integer bounds, got [${low}, ${high}].`,
    );
  }
  return { low, high };
}

function parseTrial(spec: Record<string, unknown>, base: string): TrialTemplate {
  const hasTrain = spec.train !== undefined;
  const hasCommand = spec.command !== undefined;
  if (hasTrain === hasCommand) {
    throw new InputError(
      "Sweep spec: give either 'train' (teardown's own training: a training spec, as teardown " +
        'train --train-spec reads) ' +
        'or \'command\' (your own training script, e.g. "python3 train.py --lr {lr} --seed {seed}"), one of them.',
    );
  }
  if (hasTrain) {
    if (spec.cwd !== undefined)
      throw new InputError("Sweep spec field 'cwd' goes with 'command', not 'train'.");
    return { kind: 'train', train: object(spec.train, "field 'train'") };
  }
  const command = spec.command;
  const isArgv =
    Array.isArray(command) &&
    command.length > 0 &&
    command.every((part) => typeof part === 'string');
  if (!(typeof command === 'string' && command.trim() !== '') && !isArgv) {
    throw new InputError(
      "Sweep spec field 'command' must be a command line or a non-empty array of strings (argv).",
    );
  }
  const cwd = spec.cwd === undefined ? base : resolve(base, text(spec.cwd, 'cwd'));
  if (spec.cwd !== undefined && !existsSync(cwd)) {
    throw new InputError(`Sweep spec field 'cwd': folder '${cwd}' does not exist.`);
  }
  return { kind: 'command', command: command as string | string[], cwd };
}

/** Every {name} in a template must be a parameter or 'seed'; every parameter must reach the trial. */
function checkPlaceholders(spec: SweepSpec): void {
  const names = spec.parameters.map((p) => p.name);
  const texts = templateStrings(spec.trial);
  for (const placeholder of texts.flatMap(placeholdersOf)) {
    if (!names.includes(placeholder) && !RESERVED_PLACEHOLDERS.includes(placeholder)) {
      throw new InputError(
        `Sweep spec: the trial template holds '{${placeholder}}', which is not a parameter ` +
          `(parameters: ${names.join(', ')}; and {seed}): add it to 'parameters' or fix the name.`,
      );
    }
  }
  const used = new Set(texts.flatMap(placeholdersOf));
  for (const name of names) {
    if (
      !used.has(name) &&
      !(spec.trial.kind === 'train' && TRAIN_PARAMETER_FIELDS.includes(name))
    ) {
      throw new InputError(
        `Sweep spec parameter '${name}' reaches no trial: put {${name}} in the ` +
          (spec.trial.kind === 'command'
            ? 'command.'
            : `train template (or name it after one of ${TRAIN_PARAMETER_FIELDS.join(', ')}).`),
      );
    }
  }
}

/** Top-level fields of a training spec a parameter may set by its name alone. */
export const TRAIN_PARAMETER_FIELDS = [
  'lr',
  'steps',
  'epochs',
  'batch',
  'evalEvery',
  'model',
  'task',
];

/** Every string of the trial template (nested objects and arrays included). */
export function templateStrings(trial: TrialTemplate): string[] {
  return stringsIn(trial.kind === 'command' ? trial.command : trial.train);
}

function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(stringsIn);
  return [];
}

export function placeholdersOf(template: string): string[] {
  return [...template.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((match) => match[1]);
}

function isValue(value: unknown): value is ParameterValue {
  return typeof value === 'string' || typeof value === 'boolean' || Number.isFinite(value);
}

function required(spec: Record<string, unknown>, field: string): unknown {
  if (spec[field] === undefined) throw new InputError(`Sweep spec field '${field}' is missing.`);
  return spec[field];
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InputError(
      `Sweep spec: ${what} must be a JSON object, got ${JSON.stringify(value)}.`,
    );
  }
  return value as Record<string, unknown>;
}

function oneOf<T extends string>(value: unknown, field: string, choices: readonly T[]): T {
  if (!choices.includes(value as T)) {
    throw new InputError(
      `Sweep spec field '${field}' must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}.`,
    );
  }
  return value as T;
}

function integer(value: unknown, field: string, minimum: number): number {
  if (!Number.isInteger(value) || (value as number) < minimum) {
    throw new InputError(
      `Sweep spec field '${field}' must be an integer ≥ ${minimum}, got ${JSON.stringify(value)}.`,
    );
  }
  return value as number;
}

function finite(value: unknown, field: string): number {
  if (!Number.isFinite(value))
    throw new InputError(
      `Sweep spec field '${field}' must be a number, got ${JSON.stringify(value)}.`,
    );
  return value as number;
}

function positive(value: unknown, field: string): number {
  if (!(finite(value, field) > 0))
    throw new InputError(
      `Sweep spec field '${field}' must be a positive number, got ${JSON.stringify(value)}.`,
    );
  return value as number;
}

/** Node's timers hold at most 2³¹ − 1 ms (~24.8 days); a longer one would fire at once. */
function timeout(value: unknown): number {
  const seconds = positive(value, 'timeout');
  if (seconds * 1000 > 2 ** 31 - 1) {
    throw new InputError(
      `Sweep spec field 'timeout' is ${seconds} s: at most 2147483 s (24.8 days).`,
    );
  }
  return seconds;
}

function text(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '')
    throw new InputError(
      `Sweep spec field '${field}' must be a non-empty string, got ${JSON.stringify(value)}.`,
    );
  return value;
}
