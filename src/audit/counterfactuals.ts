/**
 * The counterfactuals an audit tests: those named ('color:channel-swap'), and for each attribute
 * that is a column of the table the model reads, one of its own unless one is named — flip for a
 * binary (0/1) column, shuffle otherwise. An attribute given beside the inputs (an image's colour
 * in a file of its own) implies no transform: it serves segments and shift only, and a note says
 * how to test reliance on it.
 */
import type { AuditData } from './data.ts';
import { parseCounterfactual, type Counterfactual } from './shortcut.ts';

export function auditCounterfactuals(
  named: readonly string[],
  data: AuditData,
): { counterfactuals: Counterfactual[]; notes: string[] } {
  const counterfactuals = named.map((text) => parseCounterfactual(text, data.layout));
  const notes: string[] = [];
  for (const attribute of data.attributes) {
    if (counterfactuals.some((c) => c.attribute === attribute.name)) continue;
    if (attribute.column === undefined) {
      notes.push(
        `Attribute '${attribute.name}' is used for segments and shift only; to test reliance on it, give --counterfactual ${attribute.name}:TRANSFORM (e.g. channel-swap for colour).`,
      );
      continue;
    }
    const binary = attribute.values.every((v) => v === 0 || v === 1);
    counterfactuals.push(
      parseCounterfactual(`${attribute.name}:${binary ? 'flip' : 'shuffle'}`, data.layout),
    );
  }
  return { counterfactuals, notes };
}
