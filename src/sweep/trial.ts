/**
 * One trial, whatever it runs: what a worker (local or through the queue) receives and does.
 */
import type { Params } from './plan.ts';
import type { TrialTemplate } from './spec.ts';
import type { TrialOutcome } from './store.ts';
import { runCommandTrial } from './command-trial.ts';

/** Everything a worker needs to run one trial: plain JSON, sent to another process as it is. */
export interface TrialJob {
  id: number;
  configuration: number;
  template: TrialTemplate;
  params: Params;
  seed: number;
  metric: string;
  timeoutSeconds: number;
  /** Training trials at smoke size (a few steps). */
  smoke?: boolean;
  /** onnxruntime threads of a training trial (default 1). */
  threads?: number;
}

export async function runTrial(job: TrialJob, signal?: AbortSignal): Promise<TrialOutcome> {
  const { template } = job;
  if (template.kind === 'command') {
    return runCommandTrial({ ...job, command: template.command, cwd: template.cwd, signal });
  }
  // Imported here: a sweep of commands never loads onnxruntime.
  const { runTrainTrial } = await import('./train-trial.ts');
  return runTrainTrial({
    template: template.train,
    params: job.params,
    seed: job.seed,
    metric: job.metric,
    smoke: job.smoke,
    threads: job.threads,
    signal,
  });
}
