/**
 * The command-line grammar (README, "Command-line grammar"), checked on every command that
 * main.ts registers, so that a new command that breaks it fails here: the shared flags, one name
 * per idea (--input, --labels, --batch-size), numbers parsed as numbers.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Command, Option } from 'commander';

/** Every command main.ts loads, by the import lines of its table (name → module and factory). */
async function allCommands(): Promise<Command[]> {
  const main = readFileSync(new URL('./main.ts', import.meta.url), 'utf8');
  const entries = [
    ...main.matchAll(/(\w+): async \(\) => \(await import\('\.\/([\w-]+)\.ts'\)\)\.(\w+)\(\)/g),
  ];
  assert.ok(entries.length >= 8, `found only ${entries.length} commands in main.ts`);
  return Promise.all(
    entries.map(async ([, name, file, factory]) => {
      const command = ((await import(`./${file}.ts`)) as Record<string, () => Command>)[factory]();
      assert.equal(command.name(), name);
      return command;
    }),
  );
}

const visible = (command: Command) => command.options.filter((option) => !option.hidden);
const has = (command: Command, flag: string) =>
  command.options.some((option) => option.long === flag);
/** A command that reads examples into a model: it takes a model, or fine-tunes one (--from). */
const readsInputs = (command: Command) =>
  command.registeredArguments.some((argument) => argument.name() === 'model') ||
  has(command, '--from');

describe('command-line grammar', async () => {
  const commands = await allCommands();

  it('every command has --json, --quiet, --verbose and --threads', () => {
    for (const command of commands) {
      for (const flag of ['--json', '--quiet', '--verbose', '--threads'])
        assert.ok(has(command, flag), `${command.name()} lacks ${flag}`);
      assert.match(
        command.options.find((option) => option.long === '--json')!.flags,
        /<file\|->/,
        `${command.name()} --json takes FILE or -`,
      );
    }
  });

  it('every command that reads examples into a model takes --input NAME=FILE', () => {
    const readers = commands.filter(readsInputs);
    assert.ok(readers.length >= 6, readers.map((c) => c.name()).join(', '));
    for (const command of readers)
      assert.ok(has(command, '--input'), `${command.name()} lacks --input`);
  });

  it('one name per idea: --labels, --batch-size (the old names only as hidden aliases)', () => {
    for (const command of commands) {
      for (const option of visible(command)) {
        assert.ok(
          !['--target', '--batch', '--label', '--targets', '--bs', '--silent'].includes(
            option.long!,
          ),
          `${command.name()} shows ${option.long}`,
        );
        if (/\bbatch\b/i.test(option.long!))
          assert.equal(option.long, '--batch-size', `${command.name()} ${option.long}`);
      }
    }
  });

  it('numbers are parsed as numbers: a parser on every numeric flag, defaults that are numbers', () => {
    for (const command of commands) {
      for (const option of command.options as Option[]) {
        const numeric = /<(n|x|p|f|P|steps|norm)(\|full)?>/.test(option.flags);
        if (numeric)
          assert.ok(
            option.parseArg,
            `${command.name()} ${option.long} is numeric but has no parser`,
          );
        if (typeof option.defaultValue === 'string')
          assert.ok(
            !/^-?[\d.]+(e-?\d+)?$/.test(option.defaultValue),
            `${command.name()} ${option.long} has the string default '${option.defaultValue}'`,
          );
      }
    }
  });

  it('a number flag given a word is refused with the flag named', () => {
    const run = commands.find((command) => command.name() === 'run')!;
    const batchSize = run.options.find((option) => option.long === '--batch-size')!;
    assert.equal(batchSize.parseArg!('32', undefined), 32);
    assert.throws(
      () => batchSize.parseArg!('many', undefined),
      /--batch-size expects a positive integer, got 'many'/,
    );
    assert.throws(() => batchSize.parseArg!('2.5', undefined), /--batch-size/);
  });

  it('every command shows an example in its help', () => {
    for (const command of commands) {
      let help = '';
      command.configureOutput({
        writeOut: (text) => {
          help += text;
        },
      });
      command.outputHelp();
      assert.match(help, /Examples?:\n {2}teardown /, `${command.name()} --help has no example`);
    }
  });
});
