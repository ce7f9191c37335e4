import type { Params } from "./params";
import { train } from "./train";

/** The values of `n` and of `k` that notebook 6 and the README's metrics chart sweep. */
export const SWEEP = { n: [1, 5, 10, 20, 50], k: [10, 25, 50, 100, 200] };

/** One row of a metrics sweep: the parameter's value, the model's metrics and the popularity baseline's. */
export interface SweepRow {
  value: number;
  metrics: Record<string, number>;
  baseline: Record<string, number>;
}

/** Trains once per value of `parameter` (the rest as in `params`), keeping each run's metrics beside its baseline. */
export async function sweep(dir: string, params: Partial<Params>, parameter: "n" | "k", values: number[]): Promise<SweepRow[]> {
  const rows: SweepRow[] = [];
  for (const value of values) {
    const { manifest } = await train(dir, { ...params, [parameter]: value });
    rows.push({ value, metrics: manifest.metrics, baseline: manifest.baseline ?? {} });
  }
  return rows;
}
