/**
 * The envelope of every --json result (docs/json.md): what produced it and from what, so that
 * a number can be traced to the model, the runtime and the exact command line.
 */
import { cpus } from 'node:os';
import { writeFileAtomic } from '../files.ts';
import { onnxruntimeVersion } from '../runtime/session.ts';
import { VERSION } from '../version.ts';

export const JSON_SCHEMA_VERSION = 1;

export interface Provenance {
  model?: { path: string; sha256: string };
  threads?: number;
  seeds?: Record<string, number>;
}

export function jsonResult(command: string, provenance: Provenance, body: object): object {
  return {
    tool: 'teardown',
    version: VERSION,
    schemaVersion: JSON_SCHEMA_VERSION,
    command,
    createdAt: new Date().toISOString(),
    provenance: {
      ...provenance,
      threads: provenance.threads ?? cpus().length,
      onnxruntime: onnxruntimeVersion,
      node: process.version,
      commandLine: process.argv.slice(2),
    },
    ...body,
  };
}

export function writeJson(path: string, value: object): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}
