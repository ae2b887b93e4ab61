/**
 * Interventions from the command line. Each flag takes the hook name first, then key=value
 * settings, in one argument — so hook names with ':', '/' or '.' need no escaping:
 *
 *   --ablate 'act1 units=0,3 method=mean'
 *   --ablate '/blocks/blocks.0/Add_output_0 positions=-1 units=0:8'
 *   --patch  'blocks.0 value=corrupted-blocks.0.npy positions=3'
 *   --scale  'onnx::Conv_28 factor=0'
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
}

/** The kinds the command line takes (the library also has add and project-out). */
type FlagKind = 'ablate' | 'patch' | 'scale';

const SETTINGS: Record<FlagKind, string[]> = {
  ablate: ['units', 'positions', 'unit-axis', 'method', 'seed', 'donors'],
  patch: ['units', 'positions', 'unit-axis', 'value'],
  scale: ['units', 'positions', 'unit-axis', 'factor'],
};

export function parseInterventionFlags(flags: { ablate?: string[]; patch?: string[]; scale?: string[]; interventions?: string }): ParsedInterventions {
  const parsed: ParsedInterventions = { interventions: [], patchFiles: new Map() };
  for (const kind of ['ablate', 'patch', 'scale'] as const) {
    for (const spec of flags[kind] ?? []) addSpec(parsed, kind, parseFlag(kind, spec), process.cwd());
  }
  if (flags.interventions) {
    requireFile(flags.interventions, 'Interventions file');
    let entries: unknown;
    try {
      // A byte-order mark (editors on Windows write one) is not JSON: it is dropped.
      entries = JSON.parse(readFileSync(flags.interventions, 'utf8').replace(/^\uFEFF/, ''));
    } catch (error) {
      throw new InputError(`Interventions file '${flags.interventions}' is not valid JSON: ${(error as Error).message}.`);
    }
    if (!Array.isArray(entries)) throw new InputError(`Interventions file '${flags.interventions}' must hold a JSON array of interventions.`);
    for (const [index, entry] of entries.entries()) {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
        throw new InputError(`Interventions file '${flags.interventions}': entry ${index} is ${JSON.stringify(entry)}, not an object: give each intervention as { "kind": "ablate", "hook": "...", ... }.`);
      }
      const { kind, ...rest } = entry as { kind: string };
      if (kind !== 'ablate' && kind !== 'patch' && kind !== 'scale') {
        throw new InputError(`Interventions file '${flags.interventions}': kind must be 'ablate', 'patch' or 'scale', got ${JSON.stringify(kind)}.`);
      }
      addSpec(parsed, kind, rest as Record<string, unknown>, dirname(resolve(flags.interventions)));
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
  if (!hook) throw new InputError(`--${kind} needs a hook name first, e.g. --${kind} 'act1 units=0,3'.`);
  const settings: Record<string, unknown> = { hook };
  for (const token of tokens.slice(first)) {
    const at = token.indexOf('=');
    const key = token.slice(0, at).replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
    settings[key] = token.slice(at + 1);
  }
  return settings;
}

function addSpec(parsed: ParsedInterventions, kind: FlagKind, settings: Record<string, unknown>, baseDir: string): void {
  const hook = settings.hook;
  if (typeof hook !== 'string' || !hook) throw new InputError(`Every ${kind} needs a 'hook' name.`);
  const selection: Selection = {
    units: optionalIndices(settings.units, 'units', hook),
    positions: optionalIndices(settings.positions, 'positions', hook),
    unitAxis: settings.unitAxis === undefined ? undefined : integer(settings.unitAxis, 'unit-axis', hook),
  };
  if (kind === 'ablate') {
    const method = (settings.method ?? 'zero') as AblationMethod;
    if (!['zero', 'mean', 'resample'].includes(method)) throw new InputError(`Ablation of '${hook}': method must be zero, mean or resample, got '${method}'.`);
    const seed = settings.seed === undefined ? 0 : integer(settings.seed, 'seed', hook);
    const donors = parseDonors(settings.donors, hook, baseDir);
    if (donors && method !== 'resample') throw new InputError(`Ablation of '${hook}': donors=... sets resample draws; use it with method=resample.`);
    parsed.interventions.push({ kind, hook, method, seed, ...(donors ? { donors } : {}), ...selection });
  } else if (kind === 'scale') {
    const factor = Number(settings.factor);
    if (settings.factor === undefined || !Number.isFinite(factor)) throw new InputError(`Scaling '${hook}' needs factor=NUMBER, got '${settings.factor ?? ''}'.`);
    parsed.interventions.push({ kind, hook, factor, ...selection });
  } else {
    if (typeof settings.value !== 'string') throw new InputError(`Patching '${hook}' needs value=FILE.npy (the hook's values to put in, one row per example or a single row).`);
    const file = new NpyFile(resolve(baseDir, settings.value));
    parsed.patchFiles.set(parsed.interventions.length, file);
    parsed.interventions.push({ kind, hook, value: file.readRows(0, 1), ...selection });
  }
}

/** Resample donors: a .npy of integer reference indices, one per example, or a list ('2,3,1,0'). */
function parseDonors(value: unknown, hook: string, baseDir: string): number[] | undefined {
  if (value === undefined || Array.isArray(value) || !String(value).endsWith('.npy')) return optionalIndices(value, 'donors', hook);
  const donors = new NpyFile(resolve(baseDir, String(value))).readAll();
  if (donors.dtype !== 'int64' && donors.dtype !== 'int32') throw new InputError(`Donors file '${value}' for '${hook}' holds ${donors.dtype}: give integer reference indices (int64), one per example.`);
  return Array.from(donors.data as ArrayLike<number | bigint>, Number);
}

/** '0,3,7', '0:8' (half-open range) or a JSON array of integers. */
function optionalIndices(value: unknown, what: string, hook: string): number[] | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.map((item) => integer(item, what, hook));
  return String(value).split(',').flatMap((part) => {
    const range = /^(-?\d+):(-?\d+)$/.exec(part);
    if (range) return Array.from({ length: Math.max(0, Number(range[2]) - Number(range[1])) }, (_, i) => Number(range[1]) + i);
    return [integer(part, what, hook)];
  });
}

function integer(value: unknown, what: string, hook: string): number {
  const number = Number(value);
  if (value === '' || !Number.isInteger(number)) throw new InputError(`Intervention on '${hook}': ${what} must be integers (e.g. ${what}=0,3 or ${what}=0:8), got '${value}'.`);
  return number;
}
