import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { commandLine, metricOf, runCommandTrial, shellQuote } from './command-trial.ts';

describe('external command trials', () => {
  it('substitutes values shell-quoted: no value is read as shell syntax (checked by /bin/sh itself)', () => {
    const hostile = `$(touch /tmp/pwned) ; echo 'it''s' "x" \`id\` \\ *`;
    const { file, args } = commandLine({
      command: 'printf %s {name}',
      params: { name: hostile },
      seed: 0,
    });
    assert.equal(execFileSync(file, args, { encoding: 'utf8' }), hostile);
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
  });

  it('substitutes an argv array as it is, with no shell', () => {
    const { file, args } = commandLine({
      command: ['python3', 'train.py', '--lr={lr}', '{seed}'],
      params: { lr: 0.01 },
      seed: 3,
    });
    assert.equal(file, 'python3');
    assert.deepEqual(args, ['train.py', '--lr=0.01', '3']);
  });

  it('reads the metric from the last non-empty line, as JSON or as Python writes NaN', () => {
    assert.deepEqual(metricOf('epoch 1\n{"acc": 0.5}\n\n', 'acc'), { status: 'done', metric: 0.5 });
    assert.match(metricOf('{"acc": NaN}', 'acc').error!, /'acc' is "NaN", not a finite number/);
    assert.match(metricOf('{"acc": null}', 'acc').error!, /not a finite number/);
    assert.match(metricOf('{"loss": 1}', 'acc').error!, /no 'acc' \(it has loss\)/);
    assert.match(metricOf('done', 'acc').error!, /not JSON/);
    assert.match(metricOf('', 'acc').error!, /printed nothing/);
  });

  it('records a non-zero exit with the tail of standard error, and stops a command past its timeout', async () => {
    const crash = await runCommandTrial({
      command: 'echo boom >&2; exit 3',
      cwd: '/tmp',
      params: {},
      seed: 0,
      metric: 'm',
      timeoutSeconds: 10,
    });
    assert.equal(crash.status, 'failed');
    assert.match(crash.error!, /exit status 3; standard error ends:\nboom/);
    const started = Date.now();
    const hang = await runCommandTrial({
      command: 'sleep 30 & sleep 30; echo "{\\"m\\": 1}"',
      cwd: '/tmp',
      params: {},
      seed: 0,
      metric: 'm',
      timeoutSeconds: 0.5,
    });
    assert.equal(hang.status, 'failed');
    assert.match(hang.error!, /timed out after 0.5 s/);
    assert.ok(Date.now() - started < 5000, 'the whole process group was stopped');
  });
});
