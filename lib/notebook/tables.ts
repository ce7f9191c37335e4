import { DataFrame } from "danfojs-node";
import { mean, std } from "mathjs";
import { type Csr, rowIndices } from "../csr";
import { type GenreOneHot, genresOf } from "../features";
import type { Movies, Ratings } from "../ingest";
import type { Model } from "../model-io";
import { type Neighbours, neighboursOf } from "../neighbours";
import { historyOf, type Recommendation } from "../recommend";
import { distinct } from "../split";
import type { TuningRow } from "../tune";
import type { ComparisonRow, SweepRow } from "./sweep";

type Cell = string | number;

/** A DataFrame from rows; no rows gives one row saying "(none)" (danfojs refuses empty frames). */
export function table(columns: string[], rows: Cell[][]): DataFrame {
  return new DataFrame(rows.length > 0 ? rows : [columns.map((_, i) => (i === 0 ? "(none)" : ""))], { columns });
}

/** The first `rows` ratings: userId, movieId, rating. */
export function ratingsTable(ratings: Ratings, rows = 10): DataFrame {
  const n = Math.min(rows, ratings.userId.length);
  return table(["userId", "movieId", "rating"], Array.from({ length: n }, (_, i) => [ratings.userId[i], ratings.movieId[i], ratings.rating[i]]));
}

/** Counts and rating statistics of a ratings table (mean and std by mathjs; order statistics from one sort). */
export function ratingsSummary(ratings: Ratings): DataFrame {
  const sorted = ratings.rating.slice().sort();
  const n = sorted.length, r = Array.from(sorted);
  const users = distinct(ratings.userId).length, movies = distinct(ratings.movieId).length;
  return table(["statistic", "value"], [
    ["ratings", count(n)], ["users", count(users)], ["movies rated", count(movies)], ["density (ratings / users x movies)", n / users / movies],
    ["mean rating", mean(r)], ["std of rating", std(r) as unknown as number],
    ["min rating", sorted[0]], ["median rating", (sorted[(n - 1) >> 1] + sorted[n >> 1]) / 2], ["max rating", sorted[n - 1]],
  ]);
}

/** The first `rows` movies as read: movieId, title, genres (one `|`-separated field). */
export function moviesTable(movies: Movies, rows = 10): DataFrame {
  const n = Math.min(rows, movies.movieId.length);
  return table(["movieId", "title", "genres"], Array.from({ length: n }, (_, i) => [movies.movieId[i], movies.title[i], movies.genres[i]]));
}

/** The first `rows` movies after one-hot (spec step 1): movieId, title, then one 0/1 column per genre. */
export function oneHotTable(movies: Movies, { genres, onehot }: GenreOneHot, rows = 10): DataFrame {
  const n = Math.min(rows, movies.movieId.length);
  return table(["movieId", "title", ...genres], Array.from({ length: n }, (_, i) => [
    movies.movieId[i], movies.title[i], ...onehot.subarray(i * genres.length, (i + 1) * genres.length),
  ]));
}

/** Ratings by split and liked (spec steps 4-5): counts and shares of all ratings. */
export function splitTable(liked: Uint8Array, isTest: Uint8Array): DataFrame {
  const counts = [[0, 0], [0, 0]]; // [train, test][not liked, liked]
  for (let i = 0; i < liked.length; i++) counts[isTest[i]][liked[i]]++;
  const total = Math.max(1, liked.length);
  return table(["part", "liked", "not liked", "all", "share of ratings", "share liked"], ["train", "test"].map((part, t) => {
    const all = counts[t][0] + counts[t][1];
    return [part, counts[t][1], counts[t][0], all, all / total, all > 0 ? counts[t][1] / all : 0];
  }));
}

/** Shape, stored entries and density of sparse matrices, by name. */
export function csrTable(matrices: Record<string, Csr>): DataFrame {
  // No column called "columns" or "values": danfojs makes column names properties, and those are its own.
  return table(["matrix", "shape", "stored entries", "density"], Object.entries(matrices).map(([name, X]) => [
    name, `${X.nRows.toLocaleString("en-US")} x ${X.nCols.toLocaleString("en-US")}`, X.indices.length, X.indices.length / Math.max(1, X.nRows * X.nCols),
  ]));
}

/** A peek at the first `rows` rows of a CSR: the row's length, first column indices and values. */
export function csrRowsTable(X: Csr, rows = 5, shown = 6): DataFrame {
  return table(["row", "entries", "first column indices", "first values"], Array.from({ length: Math.min(rows, X.nRows) }, (_, r) => {
    const cols = rowIndices(X, r), values = X.data.subarray(X.indptr[r], X.indptr[r + 1]);
    const more = cols.length > shown ? ", ..." : "";
    return [r, cols.length, `${[...cols.subarray(0, shown)].join(", ")}${more}`,
      `${[...values.subarray(0, shown)].map((v) => v.toFixed(4)).join(", ")}${more}`];
  }));
}

/** Movie `m`'s stored neighbours (spec step 9) with titles: rank, movieId, title, genres, cosine. */
export function neighboursTable(neighbours: Neighbours, m: number, movieIds: Int32Array, movies: Movies, rows = 10): DataFrame {
  const row = new Map<number, number>();
  movies.movieId.forEach((id, i) => row.set(id, i));
  const { indices, sims } = neighboursOf(neighbours, m);
  return table(["rank", "movieId", "title", "genres", "cosine"], Array.from({ length: Math.min(rows, indices.length) }, (_, i) => {
    const id = movieIds[indices[i]], r = row.get(id)!;
    return [i + 1, id, movies.title[r], genresOf(movies.genres[r]).join(", "), sims[i]];
  }));
}

/** Recommendations: rank, movieId, title, genres, score; with `hits`, whether each is one of those movieIds. */
export function recommendationsTable(recommendations: Recommendation[], hits?: { movieIds: ReadonlySet<number>; column: string }): DataFrame {
  return table(["rank", "movieId", "title", "genres", "score", ...(hits ? [hits.column] : [])], recommendations.map((r, i) => [
    i + 1, r.movieId, r.title, r.genres.join(", "), r.score, ...(hits ? [hits.movieIds.has(r.movieId) ? "yes" : ""] : []),
  ]));
}

/**
 * A user's history as the model holds it (spec step 10's input), every movie they rated: movieId, title and whether
 * they liked it. A refit model holds all their ratings (step 13), an evaluation model their train ratings.
 */
export function historyTable(model: Omit<Model, "manifest">, userId: number): DataFrame {
  const { rated, liked } = historyOf(model, userId);
  const likes = new Set(liked);
  const { movieId, title } = model.movies;
  return table(["movieId", "title", "liked"], Array.from(rated, (m) => [movieId[m], title[m], likes.has(m) ? "yes" : "no"]));
}

const AT_N = ["precision", "recall", "ndcg", "map"];
const COUNTS = ["total_hits", "total_liked", "users"];

/** The spec's metrics (step 12) for the model beside the popularity baseline, on the same users. */
export function metricsTable(metrics: Record<string, number>, baseline: Record<string, number>, n: number): DataFrame {
  const show = (name: string, v: number | undefined) => (v === undefined ? "-" : COUNTS.includes(name) ? count(v) : v);
  return table(["metric", "model", "popularity"], Object.keys(metrics).map((name) => [
    AT_N.includes(name) ? `${name}@${n}` : name, show(name, metrics[name]), show(name, baseline[name]),
  ]));
}

/** A metrics sweep: the parameter, then each metric for the model and for popularity. */
export function sweepTable(rows: SweepRow[], parameter: string): DataFrame {
  const names = ["precision", "recall", "ndcg", "hitrate", "map", "mrr", "coverage"];
  return table([parameter, ...names.flatMap((m) => [m, `${m} (popularity)`])],
    rows.map((r) => [r.value, ...names.flatMap((m) => [r.metrics[m], r.baseline[m]])]));
}

/** The similarity comparison: each method's test metrics. */
export function comparisonTable(rows: ComparisonRow[]): DataFrame {
  const names = ["precision", "recall", "ndcg", "hitrate", "map", "mrr", "coverage"];
  return table(["method", "setting", ...names], rows.map((r) => [r.method, r.setting, ...names.map((m) => r.metrics[m])]));
}

/** A tuning grid, best validation precision first. */
export function tuningTable(rows: TuningRow[], top = 10): DataFrame {
  const sorted = [...rows].sort((a, b) => b.precision - a.precision).slice(0, top);
  const columns = ["model", "similarity", "shrink", "beta", "alpha", "asym", "k1", "b", "k", "factors", "regularization", "confidence", "weight"] as const;
  return table([...columns, "precision", "recall", "ndcg", "hitrate", "map", "mrr"],
    sorted.map((r) => [...columns.map((c) => r[c] ?? "-"), r.precision, r.recall, r.ndcg, r.hitrate, r.map, r.mrr]));
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const NUMBER = /^-?[\d,]*\.?\d+(e[-+]?\d+)?$/;
/** Counts shown as text, so that a column mixing counts and rates keeps its rates' decimals. */
const count = (v: number) => v.toLocaleString("en-US");

/** The decimals that show a column's numbers alike: none when all are whole, else as many as the finest needs, at most 4. */
function decimalsOf(values: unknown[]): number {
  let decimals = 0;
  for (const v of values) {
    if (typeof v !== "number" || Number.isInteger(v) || !Number.isFinite(v)) continue;
    let d = 1;
    while (d < 4 && Math.abs(v * 10 ** d - Math.round(v * 10 ** d)) > 1e-6) d++;
    decimals = Math.max(decimals, d);
  }
  return decimals;
}

export interface TableOptions {
  /** How many rows there were in all, when the table shows the first few. */
  total?: number;
  /** Headers from this column on are written vertically: many narrow columns, as in the one-hot table. */
  verticalFrom?: number;
  /** Rows to highlight, by index, with what the highlight means (said in the caption). */
  marked?: { rows: number[]; meaning: string };
  /** A height in pixels past which the table scrolls, for long tables shown whole. */
  maxHeight?: number;
}

/**
 * A DataFrame as an HTML table with a caption: text left-aligned, numbers right-aligned with the same decimals down a
 * column (ids without thousands separators), inside a box that scrolls sideways rather than clipping a wide table.
 */
export function tableHtml(df: DataFrame, caption: string, { total, verticalFrom, marked, maxHeight }: TableOptions = {}): string {
  const columns = df.columns, rows = df.values as unknown[][];
  const more = total !== undefined && total > df.shape[0] ? ` (first ${df.shape[0]} of ${total.toLocaleString("en-US")})` : "";
  const key = marked && marked.rows.length > 0 ? `; ${marked.meaning} in bold on green` : "";
  const format = columns.map((name, c) => {
    const values = rows.map((row) => row[c]);
    const numeric = values.every((v) => typeof v === "number" || v === "-" || (typeof v === "string" && NUMBER.test(v)));
    const decimals = decimalsOf(values), useGrouping = !/(Id|_enc)$/.test(name);
    const show = (v: unknown) => typeof v !== "number" ? escape(String(v))
      : v !== 0 && Math.abs(v) < 0.5 * 10 ** -decimals ? v.toExponential(2) // too small for the column's decimals
      : v.toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals, useGrouping });
    return { align: numeric ? "right" : "left", show };
  });
  const vertical = (c: number) => verticalFrom !== undefined && c >= verticalFrom ? ";writing-mode:vertical-rl;transform:rotate(180deg)" : "";
  const head = columns.map((name, c) => `<th style="text-align:${format[c].align}${vertical(c)}">${escape(name)}</th>`).join("");
  const body = rows.map((row, r) => {
    const style = marked?.rows.includes(r) ? ` class="marked" style="font-weight:bold;background:#d9f2d9"` : "";
    return `<tr${style}>${row.map((v, c) => `<td style="text-align:${format[c].align}">${format[c].show(v)}</td>`).join("")}</tr>`;
  }).join("\n");
  const box = maxHeight === undefined ? "overflow-x:auto" : `overflow:auto;max-height:${maxHeight}px`;
  return `<div style="${box}"><table class="dataframe"><caption style="text-align:left">${escape(caption)}${more}${key}</caption>\n`
    + `<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table></div>`;
}

/** HTML blocks in one row, top-aligned, never wrapping below each other: the row scrolls sideways when too wide. */
export function sideBySide(...blocks: string[]): string {
  return `<div style="display:flex;flex-wrap:nowrap;gap:2em;align-items:flex-start;overflow-x:auto">${blocks.map((b) => `<div style="flex:none">${b}</div>`).join("")}</div>`;
}
