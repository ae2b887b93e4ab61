/**
 * The README's list of supported ops and opsets, generated from the gradient-rule table
 * (src/autodiff/rules/) so it cannot drift: `npm run docs:ops` rewrites the section between the
 * markers in README.md; test/readme-ops.test.ts fails when that section is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NO_GRADIENT, RULE_FAMILIES, RULES } from '../src/autodiff/rules/index.ts';
import {
  GRADIENT_OPSET,
  LOWEST_UPGRADABLE,
  NEWEST_CHECKED_OPSET,
  OWN_OPSET_FROM,
} from '../src/autodiff/opset.ts';

export const README = fileURLToPath(new URL('../README.md', import.meta.url));
export const BEGIN =
  '<!-- ops:begin (generated from src/autodiff/rules/ by `npm run docs:ops`; do not edit by hand) -->';
export const END = '<!-- ops:end -->';

const list = (ops: Iterable<string>) =>
  [...ops]
    .sort()
    .map((op) => `\`${op}\``)
    .join(', ');

/** The section's text between the markers. */
export function opsSection(): string {
  const families = Object.entries(RULE_FAMILIES).map(
    ([family, rules]) => [family, Object.keys(rules)] as const,
  );
  const placed = new Set(families.flatMap(([, ops]) => ops));
  const unplaced = Object.keys(RULES).filter((op) => !placed.has(op));
  if (unplaced.length > 0) families.push(['other', unplaced]);
  return [
    `Gradient rules for ${Object.keys(RULES).length} ai.onnx ops, by family:`,
    '',
    ...families.map(([family, ops]) => `- ${family}: ${list(ops)}`),
    '',
    `No gradient flows through ${list([...NO_GRADIENT].filter((op) => !op.includes('_')))} (shapes, indices, comparisons, rounding, random draws).`,
    `Opsets: ${LOWEST_UPGRADABLE}–${OWN_OPSET_FROM - 1} are differentiated as the same model at opset ${GRADIENT_OPSET}; ${OWN_OPSET_FROM}–${NEWEST_CHECKED_OPSET} at their own, each op read and emitted in that opset's form.`,
  ].join('\n');
}

/** README.md with its generated section replaced by `section`. */
export function withSection(readme: string, section: string): string {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the markers ${BEGIN} … ${END}`);
  return `${readme.slice(0, start + BEGIN.length)}\n${section}\n${readme.slice(end)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(README, withSection(readFileSync(README, 'utf8'), opsSection()));
}
