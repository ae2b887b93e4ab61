/**
 * Interventions from the command line. Each flag takes the hook name first, then key=value
 * settings, in one argument — so hook names with ':', '/' or '.' need no escaping:
 *
 *   --ablate 'act1 units=0,3 method=mean'
 *   --ablate '/blocks/blocks.0/Add_output_0 positions=-1 units=0:8'
 *   --patch  'blocks.0 value=corrupted-blocks.0.npy positions=3'
 *   --scale  'onnx::Conv_28 factor=0'
 *   --add    'blocks.0 vector=steer.npy scale=4 positions=-1'     (h' = h + 4·v)
 *   --project-out 'blocks.0 direction=d.npy'                       (h' = h − (h·d̂)d̂)
 *
 * or a JSON file (--interventions FILE): [{"kind": "ablate", "hook": "act1", "units": [0, 3],
 * "method": "mean"}, {"kind": "patch", "hook": "blocks.0", "value": "x.npy"}, ...], with value
 * paths relative to the file.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError } from '../errors.ts';
import { NpyFile } from '../data/npy.ts';
import type { AblationMethod, Intervention, Selection } from '../graph/interventions.ts';
import { requireFile } from '../files.ts';

export interface ParsedInterventions {
  interventions: Intervention[];
  /** Patch values by intervention index; their rows are examples, streamed with the inputs. */
  patchFiles: Map<number, NpyFile>;
  /** How the JSON result names each add vector or project-out direction (its file, and scale). */
  vectorSources: Map<number, { vector: string; scale: number } | { direction: string }>;
}

/** The kinds the command line takes, each the library's intervention of that kind. */
type FlagKind = 'ablate' | 'patch' | 'scale' | 'add' | 'project-out';

const SETTINGS: Record<FlagKind, string[]> = {
  ablate: ['units', 'positions', 'unit-axis', 'method', 'seed', 'donors'],
  patch: ['units', 'positions', 'unit-axis', 'value'],
  scale: ['units', 'positions', 'unit-axis', 'factor'],
  add: ['units', 'positions', 'unit-axis', 'vector', 'scale'],
  'project-out': ['positions', 'unit-axis', 'direction', 'units'], // units only to be refused
};

/** Each kind's flag as commander names it in the parsed options. */
const FLAG_KEYS: Record<FlagKind, keyof InterventionFlags> = {
  ablate: 'ablate',
  patch: 'patch',
  scale: 'scale',
  add: 'add',
  'project-out': 'projectOut',
};

export interface InterventionFlags {
  ablate?: string[];
  patch?: string[];
  scale?: string[];
  add?: string[];
  projectOut?: string[];
  interventions?: string;
}

export function parseInterventionFlags(flags: InterventionFlags): ParsedInterventions {
  const parsed: ParsedInterventions = {
    interventions: [],
    patchFiles: new Map(),
    vectorSources: new Map(),
  };
  for (const kind of Object.keys(SETTINGS) as FlagKind[]) {
    const specs = (flags[FLAG_KEYS[kind]] ?? []) as string[];
    for (const spec of specs) addSpec(parsed, kind, parseFlag(kind, spec), process.cwd());
  }
  if (flags.interventions) {
    requireFile(flags.interventions, 'Interventions file');
    let entries: unknown;
    try {
      // A byte-order mark (editors on Windows write one) is not JSON: it is dropped.
      entries = JSON.parse(readFileSync(flags.interventions, 'utf8').replace(/^\uFEFF/, ''));
    } catch (error) {
      throw new InputError(
        `Interventions file '${flags.interventions}' is not valid JSON: ${(error as Error).message}.`,
      );
    }
    if (!Array.isArray(entries))
      throw new InputError(
        `Interventions file '${flags.interventions}' must hold a JSON array of interventions.`,
      );
    for (const [index, entry] of entries.entries()) {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
        throw new InputError(
          `Interventions file '${flags.interventions}': entry ${index} is ${JSON.stringify(entry)}, not an object: give each intervention as { "kind": "ablate", "hook": "...", ... }.`,
        );
      }
      const { kind, ...rest } = entry as { kind: string };
      if (!Object.hasOwn(SETTINGS, kind)) {
        const given = kind === undefined ? 'none' : JSON.stringify(kind);
        throw new InputError(
          `Interventions file '${flags.interventions}': entry ${index}'s kind must be one of ${Object.keys(
            SETTINGS,
          )
            .map((k) => `'${k}'`)
            .join(', ')}, got ${given}.`,
        );
      }
      addSpec(
        parsed,
        kind as FlagKind,
        rest as Record<string, unknown>,
        dirname(resolve(flags.interventions)),
      );
    }
  }
  return parsed;
}

/** 'HOOK key=value ...' → { hook, key: value }; the hook is everything before the first known setting. */
function parseFlag(kind: FlagKind, spec: string): Record<string, unknown> {
  const tokens = spec.trim().split(/\s+/);
  const isSetting = (token: string) => SETTINGS[kind].some((key) => token.startsWith(`${key}=`));
  let first = tokens.length;
  while (first > 1 && isSetting(tokens[first - 1])) first--;
  const hook = tokens.slice(0, first).join(' ');
  if (!hook)
    throw new InputError(`--${kind} needs a hook name first, e.g. --${kind} 'act1 units=0,3'.`);
  const settings: Record<string, unknown> = { hook };
  for (const token of tokens.slice(first)) {
    const at = token.indexOf('=');
    const key = token
      .slice(0, at)
      .replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
    settings[key] = token.slice(at + 1);
  }
  return settings;
}

function addSpec(
  parsed: ParsedInterventions,
  kind: FlagKind,
  settings: Record<string, unknown>,
  baseDir: string,
): void {
  const hook = settings.hook;
  if (typeof hook !== 'string' || !hook) throw new InputError(`Every ${kind} needs a 'hook' name.`);
  const selection: Selection = {
    units: optionalIndices(settings.units, 'units', hook),
    positions: optionalIndices(settings.positions, 'positions', hook),
    unitAxis:
      settings.unitAxis === undefined ? undefined : integer(settings.unitAxis, 'unit-axis', hook),
  };
  if (kind === 'ablate') {
    const method = (settings.method ?? 'zero') as AblationMethod;
    if (!['zero', 'mean', 'resample'].includes(method))
      throw new InputError(
        `Ablation of '${hook}': method must be zero, mean or resample, got ${shown(method)}.`,
      );
    const seed = settings.seed === undefined ? 0 : integer(settings.seed, 'seed', hook);
    const donors = parseDonors(settings.donors, hook, baseDir);
    if (donors && method !== 'resample')
      throw new InputError(
        `Ablation of '${hook}': donors=... sets resample draws; use it with method=resample.`,
      );
    parsed.interventions.push({
      kind,
      hook,
      method,
      seed,
      ...(donors ? { donors } : {}),
      ...selection,
    });
  } else if (kind === 'add') {
    const vector = readVector(settings.vector, 'vector', hook, baseDir, kind);
    const factor = settings.scale === undefined ? 1 : decimal(settings.scale);
    if (!Number.isFinite(factor))
      throw new InputError(
        `Adding to '${hook}': scale must be a number, got ${shown(settings.scale)}.`,
      );
    parsed.vectorSources.set(parsed.interventions.length, { vector: vector.source, scale: factor });
    parsed.interventions.push({
      kind,
      hook,
      vector: vector.values.map((value) => value * factor),
      ...selection,
    });
  } else if (kind === 'project-out') {
    if (settings.units !== undefined)
      throw new InputError(
        `project-out on '${hook}' takes no units: it removes a direction across all units; choose positions, or use --ablate for single units.`,
      );
    const direction = readVector(settings.direction, 'direction', hook, baseDir, kind);
    parsed.vectorSources.set(parsed.interventions.length, { direction: direction.source });
    parsed.interventions.push({
      kind,
      hook,
      direction: direction.values,
      positions: selection.positions,
      unitAxis: selection.unitAxis,
    });
  } else if (kind === 'scale') {
    const factor = decimal(settings.factor);
    if (settings.factor === undefined || !Number.isFinite(factor))
      throw new InputError(
        `Scaling '${hook}' needs factor=NUMBER, got ${shown(settings.factor === undefined ? '' : settings.factor)}.`,
      );
    parsed.interventions.push({ kind, hook, factor, ...selection });
  } else {
    if (typeof settings.value !== 'string')
      throw new InputError(
        `Patching '${hook}' needs value=FILE.npy (the hook's values to put in, one row per example or a single row).`,
      );
    const file = new NpyFile(resolve(baseDir, settings.value));
    parsed.patchFiles.set(parsed.interventions.length, file);
    parsed.interventions.push({ kind, hook, value: file.readRows(0, 1), ...selection });
  }
}

/**
 * An add vector or project-out direction, one value per unit: a .npy file (any shape with that
 * many values; relative to the interventions file, or the working folder for flags), or the
 * numbers themselves ('1.5,-2,0' on the command line, a JSON array in a file).
 */
function readVector(
  value: unknown,
  what: string,
  hook: string,
  baseDir: string,
  kind: FlagKind,
): { values: number[]; source: string } {
  const verb = kind === 'add' ? `Adding to '${hook}'` : `Projecting out of '${hook}'`;
  if (value === undefined || value === '')
    throw new InputError(
      `${verb} needs ${what}=FILE.npy: one value per unit of the hook (e.g. ${what}=${what}.npy or ${what}=1,0,-2).`,
    );
  if (typeof value === 'string' && value.endsWith('.npy')) {
    const tensor = new NpyFile(resolve(baseDir, value)).readAll();
    if (tensor.dtype !== 'float32' && tensor.dtype !== 'float64')
      throw new InputError(
        `${verb}: the ${what} file '${value}' holds ${tensor.dtype}; give float32 or float64 values, one per unit.`,
      );
    return { values: Array.from(tensor.data as ArrayLike<number>), source: value };
  }
  const numbers = Array.isArray(value)
    ? value.map(decimal)
    : typeof value === 'string'
      ? value.split(',').map(decimal)
      : [NaN];
  if (numbers.length === 0 || numbers.some((number) => !Number.isFinite(number))) {
    throw new InputError(
      `${verb}: ${what} must be a .npy file or numbers (e.g. ${what}=1,0,-2), got ${shown(value)}.`,
    );
  }
  return { values: numbers, source: numbers.join(',') };
}

/** Resample donors: a .npy of integer reference indices, one per example, or a list ('2,3,1,0'). */
function parseDonors(value: unknown, hook: string, baseDir: string): number[] | undefined {
  if (value === undefined || Array.isArray(value) || !String(value).endsWith('.npy'))
    return optionalIndices(value, 'donors', hook);
  const donors = new NpyFile(resolve(baseDir, String(value))).readAll();
  if (donors.dtype !== 'int64' && donors.dtype !== 'int32')
    throw new InputError(
      `Donors file '${value}' for '${hook}' holds ${donors.dtype}: give integer reference indices (int64), one per example.`,
    );
  return Array.from(donors.data as ArrayLike<number | bigint>, Number);
}

/** '0,3,7', '0:8' (half-open range) or a JSON array of integers. */
function optionalIndices(value: unknown, what: string, hook: string): number[] | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.map((item) => integer(item, what, hook));
  if (typeof value !== 'string' && typeof value !== 'number') return [integer(value, what, hook)];
  return String(value)
    .split(',')
    .flatMap((part) => {
      const range = /^(-?\d+):(-?\d+)$/.exec(part);
      if (range) return indexRange(Number(range[1]), Number(range[2]), part, what, hook);
      return [integer(part, what, hook)];
    });
}

/** The most indices one range may name: more than any hook has (2^24 units or positions). */
const MAX_RANGE = 2 ** 24;

/** start:end, half-open; refused when it names more indices than any hook holds (0:99999999999). */
function indexRange(
  start: number,
  end: number,
  text: string,
  what: string,
  hook: string,
): number[] {
  const length = Math.max(0, end - start);
  if (length > MAX_RANGE) {
    throw new InputError(
      `Intervention on '${hook}': ${what}=${text} names ${length.toLocaleString('en-US')} indices, more than a hook holds (at most ${MAX_RANGE.toLocaleString('en-US')} per range): give the hook's own range (teardown hooks MODEL shows its shape).`,
    );
  }
  return Array.from({ length }, (_, i) => start + i);
}

/** A JSON integer or a string of decimal digits ('0x10', '1e3', null and [] are not). */
function integer(value: unknown, what: string, hook: string): number {
  const digits = typeof value === 'string' && /^-?\d+$/.test(value);
  const number = typeof value === 'number' || digits ? Number(value) : NaN;
  if (!Number.isSafeInteger(number)) {
    throw new InputError(
      `Intervention on '${hook}': ${what} must be integers (e.g. ${what}=0,3 or ${what}=0:8), got ${shown(value)}.`,
    );
  }
  return number;
}

/**
 * A JSON number or a decimal string ('1.5', '-2e3'), else NaN: Number() would read '', null and
 * [] as 0, '0x10' as 16 and true as 1.
 */
function decimal(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(value))
    return Number(value);
  return NaN;
}

/** A setting as a message shows it: a string in quotes, anything else as JSON. */
function shown(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : (JSON.stringify(value) ?? String(value));
}
