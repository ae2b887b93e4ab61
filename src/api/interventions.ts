/**
 * Interventions for `model.run(inputs, { interventions })`, each compiled to a graph edit
 * (graph/interventions.ts): ablate (zero, mean, resample), patch, scale, addVector (steering) and
 * projectOut (remove a direction).
 */
export {
  ablate,
  addVector,
  patch,
  projectOut,
  scale,
  type AblationMethod,
  type Intervention,
  type Selection,
} from '../graph/interventions.ts';
