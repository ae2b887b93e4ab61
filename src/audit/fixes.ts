export interface FixRow {
  method: string;
  inDistribution: number;
  outOfDistribution: number;
  settings: string;
  seconds: number;
}

export interface FixesResult {
  description: string;
  rows: FixRow[];
}
