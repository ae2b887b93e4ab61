/**
 * Learning-rate schedules: linear warm-up from 0 over `warmupSteps`, then constant or cosine decay
 * to 0 at the last step — lr_t = lr·t/w during warm-up, lr·½(1 + cos(π·(t − w)/(T − w))) after.
 */
export interface Schedule {
  warmupSteps: number;
  cosine: boolean;
}

/** The learning rate at step t (1-based) of T. */
export function learningRate(
  base: number,
  schedule: Schedule,
  step: number,
  totalSteps: number,
): number {
  if (step <= schedule.warmupSteps) return (base * step) / schedule.warmupSteps;
  if (!schedule.cosine) return base;
  const progress = (step - schedule.warmupSteps) / Math.max(1, totalSteps - schedule.warmupSteps);
  return base * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}
