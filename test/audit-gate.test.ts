/**
 * `audit --fail-on SEVERITY` names the findings that tripped it (issue 14, "The gate says why"),
 * in the terminal and in `--json`'s `gate`. Planted ground truth: test/fixtures/foreign-shortcut is
 * a PyTorch MLP trained on a table whose `shortcut` column agrees with the label 95% of the time
 * (its make.py). Audited on its training table alone, the only high finding is that column; a
 * weak segment on f1/f2 is medium and must not trip a `high` gate.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { tempDir } from './model-files.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/foreign-shortcut', import.meta.url));
const ORDER = ['low', 'medium', 'high'];

interface Finding {
  detector: string;
  severity: string;
  title: string;
  feature?: string;
  attribute?: string;
}

function audit(extra: string[]) {
  const dir = tempDir();
  const args = ['audit', join(FIXTURE, 'model.onnx'), '--data', join(FIXTURE, 'train.csv')];
  args.push('--label-column', 'label', '--json', 'audit.json', '--threads', '1', ...extra);
  const run = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8' });
  const json = JSON.parse(readFileSync(join(dir, 'audit.json'), 'utf8'));
  return { dir, status: run.status, stdout: run.stdout, stderr: run.stderr, json };
}

/** The gate's expected list, read off `findings` independently of the gate's own code. */
function atOrAbove(findings: Finding[], failOn: string) {
  return findings
    .map((finding, index) => ({ finding, index }))
    .filter(({ finding }) => ORDER.indexOf(finding.severity) >= ORDER.indexOf(failOn));
}

describe('audit --fail-on names what tripped it', () => {
  it('high: exit 3, and the tripped findings are the planted shortcut column, nothing below high', () => {
    const { status, stdout, stderr, json } = audit(['--fail-on', 'high']);
    assert.equal(status, 3, stderr);
    const { gate, findings } = json as { gate: any; findings: Finding[] };
    assert.equal(gate.failOn, 'high');
    assert.equal(gate.exitCode, 3);
    assert.ok(gate.tripped.length >= 1, 'the shortcut trips the gate');
    for (const tripped of gate.tripped) {
      assert.equal(tripped.severity, 'high');
      assert.match(tripped.detector, /^shortcut-/);
      assert.equal(tripped.feature ?? tripped.attribute, 'shortcut', JSON.stringify(tripped));
      assert.deepEqual(findings[tripped.index].title, tripped.title, 'index points at the finding');
    }
    const expected = atOrAbove(findings, 'high');
    assert.deepEqual(
      gate.tripped.map((t: { index: number }) => t.index),
      expected.map((e) => e.index),
    );
    const below = findings.filter((f) => f.severity !== 'high');
    assert.ok(below.length >= 1, 'a medium finding exists, so the test can tell it is left out');
    const gateText = stdout.slice(stdout.indexOf('--fail-on high:'));
    assert.match(gateText, /^--fail-on high: 1 finding\(s\) at or above 'high' tripped the gate/);
    for (const tripped of gate.tripped) assert.ok(gateText.includes(tripped.title), tripped.title);
    for (const finding of below) assert.ok(!gateText.includes(finding.title), finding.title);
  });

  it('medium: the medium finding trips it too, in the order of findings', () => {
    const { status, json } = audit(['--fail-on', 'medium']);
    assert.equal(status, 3);
    const expected = atOrAbove(json.findings, 'medium');
    assert.ok(expected.some(({ finding }) => finding.severity === 'medium'));
    assert.deepEqual(
      json.gate.tripped.map((t: Finding) => [t.detector, t.severity, t.title]),
      expected.map(({ finding }) => [finding.detector, finding.severity, finding.title]),
    );
  });

  it('nothing at the severity: exit 0, an empty list, and the terminal says so', () => {
    const dir = tempDir();
    // With high at 50 points the shortcut (39 points lost when shuffled) is medium.
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ high: 50 }));
    const { status, stdout, json } = audit([
      '--fail-on',
      'high',
      '--config',
      join(dir, 'config.json'),
    ]);
    assert.equal(status, 0);
    assert.ok(
      json.findings.length >= 1 && json.findings.every((f: Finding) => f.severity !== 'high'),
    );
    assert.deepEqual(json.gate, { failOn: 'high', tripped: [], exitCode: 0 });
    assert.match(stdout, /--fail-on high: no finding at or above 'high'; exit status 0\./);
  });

  it('without --fail-on there is no gate in the JSON', () => {
    const { status, json } = audit([]);
    assert.equal(status, 0);
    assert.equal('gate' in json, false);
  });
});
