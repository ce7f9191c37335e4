import { describeModel, type Params, resolveParams } from "../params";
import { compareOnTest } from "../compare";
import { prepare, runOf, train } from "../train";
import { type Grid, paramsOfRow, type TuningRow } from "../tune";

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

/**
 * The grid notebook 6 tunes: every similarity and ALS at a few values around what DEFAULT_GRID chooses
 * on real data (docs/models.md), so the whole comparison runs in minutes; `tune` has the full grid.
 */
export const COMPARE_GRID: Grid = {
  similarity: ["cosine", "rp3beta", "asym", "tfidf", "bm25"],
  shrink: [0, 50],
  beta: [0.2, 0.4],
  alpha: [0.75, 1],
  asym: [0.7],
  k1: [1.2, 5],
  b: [0.25],
  k: [50, 200, 500],
  factors: [64],
  regularization: [70, 100],
  confidence: [10, 30],
  iterations: [15],
  weight: [0.5, 0.85],
};

/** One line of the model comparison: a method, its setting and its test metrics. */
export interface ComparisonRow {
  method: string;
  setting: string;
  metrics: Record<string, number>;
}

/** A tuning row's family: its model, or for neighbours its similarity (cosine with shrinkage apart from the original's). */
const familyOf = (r: TuningRow) => (r.model !== "neighbours" ? r.model : r.similarity === "cosine" && r.shrink! > 0 ? "cosine with shrinkage" : r.similarity!);

/**
 * Test metrics of the original cosine (the spec's defaults), of each family's best setting on the
 * validation grid (`tune`'s rows: every similarity, ALS, the blend), each trained on all of train,
 * and of the popularity baseline, on the same users.
 */
export async function compareModels(dir: string, options: Partial<Params>, grid: TuningRow[]): Promise<ComparisonRow[]> {
  const params = resolveParams(options);
  const best = new Map<string, TuningRow>();
  for (const r of grid) {
    if (r.model === "popularity" || (r.similarity === "cosine" && r.shrink === 0)) continue;
    const family = familyOf(r), seen = best.get(family);
    if (!seen || r.precision > seen.precision) best.set(family, r);
  }
  const settings = [{ name: "cosine (original)", params }, ...[...best].map(([name, r]) => ({ name, params: paramsOfRow(params, r) }))];
  const run = runOf({});
  const { rows } = await compareOnTest(await prepare(dir, params, run), settings, run);
  return rows.map((r) => ({
    method: r.name,
    setting: r.params === null ? "" : r.params === params ? `k=${params.k}` : describeModel(r.params),
    metrics: { ...r.metrics },
  }));
}
