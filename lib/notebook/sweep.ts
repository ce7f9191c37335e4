import type { Params } from "../params";
import { train } from "../train";
import type { TuningRow } from "../tune";

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

/** One line of the similarity comparison: a method, its setting and its test metrics. */
export interface ComparisonRow {
  method: string;
  setting: string;
  metrics: Record<string, number>;
}

/**
 * Test metrics of the original cosine (the spec's defaults), of the best cosine with shrinkage and the
 * best rp3beta on the validation grid (`tune`'s rows), and of the popularity baseline, on the same users.
 */
export async function compareSimilarities(dir: string, params: Partial<Params>, grid: TuningRow[]): Promise<ComparisonRow[]> {
  const bestOf = (keep: (r: TuningRow) => boolean) => grid.filter(keep).reduce((a, b) => (b.precision > a.precision ? b : a));
  const original = await train(dir, params);
  const rows: ComparisonRow[] = [{ method: "cosine (original)", setting: `k=${original.manifest.params.k}`, metrics: original.manifest.metrics }];
  for (const [method, best] of [
    ["cosine with shrinkage", bestOf((r) => r.similarity === "cosine" && r.shrink! > 0)],
    ["rp3beta", bestOf((r) => r.similarity === "rp3beta")],
  ] as const) {
    const { manifest } = await train(dir, { ...params, similarity: best.similarity as Params["similarity"], shrink: best.shrink!, beta: best.beta!, k: best.k! });
    rows.push({ method, setting: best.similarity === "cosine" ? `shrink=${best.shrink}, k=${best.k}` : `beta=${best.beta}, k=${best.k}`, metrics: manifest.metrics });
  }
  rows.push({ method: "popularity", setting: "", metrics: original.manifest.baseline! });
  return rows;
}
