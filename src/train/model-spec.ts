/**
 * Model specs as users write them on the command line, `KIND:key=value,...`:
 *   mlp:hidden=256-256,act=relu
 *   cnn:channels=8-16,fc=32
 *   transformer:layers=1,heads=4,d_model=128,d_mlp=512,act=relu,ln=false,init=nanda
 *   lstm:hidden=128,layers=1,embed=64,bidirectional=false   (train/lstm.ts)
 * init=torch (default) initialises as PyTorch's modules do; init=nanda as Nanda et al.'s grokking
 * code does: every weight N(0, 1/d_model), the unembedding N(0, 1/classes), biases 0.
 */
import { InputError } from '../errors.ts';
import type { LstmSpec } from './lstm.ts';

export type Activation = 'relu' | 'tanh' | 'gelu' | 'sigmoid';

export type ModelSpec =
  | { kind: 'mlp'; hidden: number[]; act: Activation }
  | { kind: 'cnn'; channels: number[]; fc: number; act: Activation }
  | {
      kind: 'transformer';
      layers: number;
      heads: number;
      dModel: number;
      dMlp: number;
      act: Activation;
      layerNorm: boolean;
      init: 'torch' | 'nanda';
    }
  | LstmSpec;

const ACTIVATIONS: Activation[] = ['relu', 'tanh', 'gelu', 'sigmoid'];

const USAGE =
  'expected mlp:hidden=256-256[,act=relu], cnn:channels=8-16[,fc=32][,act=relu], transformer:layers=1,heads=4,d_model=128,d_mlp=512[,act=relu][,ln=true][,init=torch|nanda] or lstm:hidden=128[,layers=1][,embed=64][,bidirectional=false]';

export function parseModelSpec(text: string): ModelSpec {
  const [kind, rest = ''] = text.split(/:(.*)/s);
  const settings = new Map<string, string>();
  for (const part of rest.split(',').filter(Boolean)) {
    const [key, value] = part.split('=');
    if (!key || value === undefined)
      throw new InputError(`Model spec '${text}': '${part}' is not key=value (${USAGE}).`);
    settings.set(key.trim(), value.trim());
  }
  const take = (key: string, fallback?: string): string => {
    const value = settings.get(key) ?? fallback;
    settings.delete(key);
    if (value === undefined)
      throw new InputError(`Model spec '${text}' needs ${key}=... (${USAGE}).`);
    return value;
  };
  const sizes = (key: string, fallback?: string) =>
    take(key, fallback)
      .split('-')
      .map((size) => positive(size, key, text));
  const act = take('act', 'relu') as Activation;
  if (!ACTIVATIONS.includes(act))
    throw new InputError(
      `Model spec '${text}': act must be one of ${ACTIVATIONS.join(', ')}, got '${act}'.`,
    );
  let spec: ModelSpec;
  if (kind === 'mlp') spec = { kind, hidden: sizes('hidden'), act };
  else if (kind === 'cnn')
    spec = {
      kind,
      channels: sizes('channels', '8-16'),
      fc: positive(take('fc', '32'), 'fc', text),
      act,
    };
  else if (kind === 'transformer') {
    spec = {
      kind,
      layers: positive(take('layers', '1'), 'layers', text),
      heads: positive(take('heads', '4'), 'heads', text),
      dModel: positive(take('d_model', '128'), 'd_model', text),
      dMlp: positive(take('d_mlp', '512'), 'd_mlp', text),
      act,
      layerNorm: booleanSetting(take('ln', 'true'), 'ln', text),
      init: initSetting(take('init', 'torch'), text),
    };
    if (spec.dModel % spec.heads !== 0)
      throw new InputError(
        `Model spec '${text}': d_model (${spec.dModel}) must be a multiple of heads (${spec.heads}).`,
      );
  } else if (kind === 'lstm') {
    spec = {
      kind,
      hidden: positive(take('hidden', '128'), 'hidden', text),
      layers: positive(take('layers', '1'), 'layers', text),
      embed: positive(take('embed', '64'), 'embed', text),
      bidirectional: booleanSetting(take('bidirectional', 'false'), 'bidirectional', text),
    };
  } else throw new InputError(`Model spec '${text}': unknown model kind '${kind}' (${USAGE}).`);
  if (settings.size > 0)
    throw new InputError(
      `Model spec '${text}': unknown setting(s) ${[...settings.keys()].join(', ')} for ${kind} (${USAGE}).`,
    );
  return spec;
}

function positive(value: string, key: string, text: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1)
    throw new InputError(
      `Model spec '${text}': ${key} must be a positive integer, got '${value}'.`,
    );
  return number;
}

function booleanSetting(value: string, key: string, text: string): boolean {
  if (value !== 'true' && value !== 'false')
    throw new InputError(`Model spec '${text}': ${key} must be true or false, got '${value}'.`);
  return value === 'true';
}

function initSetting(value: string, text: string): 'torch' | 'nanda' {
  if (value !== 'torch' && value !== 'nanda')
    throw new InputError(`Model spec '${text}': init must be torch or nanda, got '${value}'.`);
  return value;
}
