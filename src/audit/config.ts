/**
 * The audit's thresholds (documented in docs/audit.md), overridable with --config FILE (JSON, any
 * subset of these keys). Severity of a check whose effect is E percentage points and whose
 * p-value, Holm-adjusted over every test the audit ran, is p:
 *   high    E ≥ high (20)   and p < alpha (0.01)
 *   medium  E ≥ medium (5)  and p < alpha
 *   low     p < alpha
 *   silent  otherwise
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.ts';
import { requireFile } from '../files.ts';
import { DEFAULT_CARRIER_FRACTION } from '../inspect/carriers.ts';

export interface AuditConfig {
  alpha: number;
  high: number;
  medium: number;
  seed: number;
  calibration: { bins: number; resamples: number; overconfidence: number };
  /** Prediction flips tolerated before robustness and counterfactual checks count as significant (fraction). */
  flipTolerance: number;
  robustness: { imageNoise: number; tableNoise: number };
  /** Tables wider than maxFeatures (e.g. flattened images) skip the per-feature detectors and slices. */
  features: { aloneGap: number; maxFeatures: number };
  segments: { minSize: number; bins: number; maxFindings: number };
  units: { fraction: number; examples: number };
}

export const DEFAULT_CONFIG: AuditConfig = {
  alpha: 0.01,
  high: 20,
  medium: 5,
  seed: 0,
  calibration: { bins: 15, resamples: 200, overconfidence: 0.9 },
  flipTolerance: 0.01,
  robustness: { imageNoise: 0.05, tableNoise: 0.05 },
  features: { aloneGap: 5, maxFeatures: 100 },
  segments: { minSize: 30, bins: 4, maxFindings: 5 },
  units: { fraction: DEFAULT_CARRIER_FRACTION, examples: 500 },
};

export function loadConfig(path?: string): AuditConfig {
  if (!path) return DEFAULT_CONFIG;
  requireFile(path, 'Audit config');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InputError(`Audit config '${path}' is not valid JSON (${(error as Error).message}).`);
  }
  return merge(DEFAULT_CONFIG, parsed, path, '') as AuditConfig;
}

/** `override` laid over `base`, refusing keys and types the defaults do not have. */
function merge(base: unknown, override: unknown, path: string, at: string): unknown {
  if (typeof base === 'number') {
    if (typeof override !== 'number' || !Number.isFinite(override) || override < 0)
      throw new InputError(
        `Audit config '${path}': '${at.slice(1)}' must be a non-negative number, got ${JSON.stringify(override)}.`,
      );
    return override;
  }
  if (typeof override !== 'object' || override === null || Array.isArray(override))
    throw new InputError(
      `Audit config '${path}': '${at.slice(1) || '(top level)'}' must be an object.`,
    );
  const result: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(override)) {
    if (!(key in result))
      throw new InputError(
        `Audit config '${path}': unknown key '${`${at}.${key}`.slice(1)}' (known: ${Object.keys(result).join(', ')}).`,
      );
    result[key] = merge(result[key], value, path, `${at}.${key}`);
  }
  return result;
}
