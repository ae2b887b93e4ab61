/** The README's list of supported ops is the rule table's (scripts/docs-ops.ts): stale, it fails. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { opsSection, README, withSection } from '../scripts/docs-ops.ts';

describe('README supported ops', () => {
  it('the generated section equals what the rule table generates (run `npm run docs:ops` to update it)', () => {
    const readme = readFileSync(README, 'utf8');
    assert.equal(readme, withSection(readme, opsSection()));
  });
});
