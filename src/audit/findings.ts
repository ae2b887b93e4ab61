/**
 * A check is one statistical test a detector ran; a finding is a check that came out significant
 * after correcting for every test of the audit (Holm), with its severity (config.ts).
 */
import { holmAdjust } from '../stats.ts';
import type { AuditConfig } from './config.ts';

export type Detector =
  | 'shortcut-attribute'
  | 'shortcut-feature'
  | 'weak-segment'
  | 'calibration'
  | 'robustness'
  | 'shift';
export type Severity = 'high' | 'medium' | 'low';
export const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high'];

export interface Check {
  detector: Detector;
  /** One line a person reads first. */
  title: string;
  attribute?: string;
  feature?: string;
  segment?: string;
  /** The measurement and its 95% interval (in points when the name says so). */
  metric: { name: string; value: number; interval: [number, number] };
  /** The effect in percentage points (flip rate, accuracy drop, calibration gap). */
  effect: number;
  pValue: number;
  evidence: Record<string, unknown>;
}

export interface Finding extends Check {
  severity: Severity;
  /** p-value after Holm's correction over every test of the audit. */
  adjustedP: number;
  threshold: { high: number; medium: number; alpha: number; tests: number };
}

export function assess(
  checks: readonly Check[],
  config: AuditConfig,
): { findings: Finding[]; silent: number } {
  const adjusted = holmAdjust(checks.map((check) => check.pValue));
  const threshold = {
    high: config.high,
    medium: config.medium,
    alpha: config.alpha,
    tests: checks.length,
  };
  const findings: Finding[] = [];
  checks.forEach((check, i) => {
    const severity = severityOf(check.effect, adjusted[i], config);
    if (severity) findings.push({ ...check, severity, adjustedP: adjusted[i], threshold });
  });
  findings.sort(
    (a, b) =>
      SEVERITIES.indexOf(b.severity) - SEVERITIES.indexOf(a.severity) || b.effect - a.effect,
  );
  return { findings, silent: checks.length - findings.length };
}

export function severityOf(
  effect: number,
  adjustedP: number,
  config: AuditConfig,
): Severity | undefined {
  if (!(adjustedP < config.alpha)) return undefined;
  if (effect >= config.high) return 'high';
  if (effect >= config.medium) return 'medium';
  return 'low';
}

export function atLeast(severity: Severity, floor: Severity): boolean {
  return SEVERITIES.indexOf(severity) >= SEVERITIES.indexOf(floor);
}

/** A finding named by a `--fail-on` gate: enough to find it in `findings` (`index`) and read it. */
export interface TrippedFinding {
  /** Its position in the audit's `findings` (most severe first). */
  index: number;
  detector: Detector;
  severity: Severity;
  title: string;
  attribute?: string;
  feature?: string;
  segment?: string;
}

/** The verdict of `audit --fail-on SEVERITY`: the findings at or above it, and the exit status. */
export interface Gate {
  failOn: Severity;
  tripped: TrippedFinding[];
  /** 3 when any finding tripped the gate, else 0. */
  exitCode: 0 | 3;
}

export const GATE_EXIT_CODE = 3;

export function gate(findings: readonly Finding[], failOn: Severity): Gate {
  const tripped: TrippedFinding[] = [];
  findings.forEach((finding, index) => {
    if (!atLeast(finding.severity, failOn)) return;
    const { detector, severity, title, attribute, feature, segment } = finding;
    tripped.push({ index, detector, severity, title, ...defined({ attribute, feature, segment }) });
  });
  return { failOn, tripped, exitCode: tripped.length ? GATE_EXIT_CODE : 0 };
}

function defined(fields: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(fields).filter(([, value]) => value !== undefined),
  ) as Record<string, string>;
}
