import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import type { GenreOneHot } from "../features";
import { fnv1a32 } from "../hash";
import type { Ratings } from "../ingest";
import type { ComparisonRow, SweepRow } from "./sweep";

/** A plotly.js figure: traces and layout, as plain JSON. */
export interface Figure {
  data: Record<string, unknown>[];
  layout: Record<string, unknown>;
}

const BLUE = "#1f77b4", ORANGE = "#ff7f0e";
/** A layout with a title and labelled axes; the last argument adds to the axes and to the layout. */
const base = (title: string, x: string, y: string, { xaxis = {}, yaxis = {}, ...rest }: { xaxis?: object; yaxis?: object; [key: string]: unknown } = {}) => ({
  title: { text: title },
  xaxis: { title: { text: x }, ...xaxis },
  yaxis: { title: { text: y }, ...yaxis },
  margin: { t: 50, r: 20, b: 60, l: 70 },
  height: 380,
  ...rest,
});

/** How many ratings have each value, 0.5 to 5. */
export function ratingDistribution(ratings: Ratings, likeThreshold: number): Figure {
  const values = Array.from({ length: 10 }, (_, i) => (i + 1) / 2);
  const counts = new Array<number>(10).fill(0);
  for (const r of ratings.rating) counts[Math.round(r * 2) - 1]++;
  return {
    data: [{ type: "bar", x: values, y: counts, marker: { color: values.map((v) => (v >= likeThreshold ? BLUE : "#aaaaaa")) } }],
    layout: base(`Ratings by value (blue: liked, rating >= ${likeThreshold})`, "rating", "ratings", { xaxis: { dtick: 0.5 } }),
  };
}

/** How many movies carry each genre, from the one-hot table. */
export function moviesPerGenre({ genres, onehot }: GenreOneHot): Figure {
  const counts = genres.map((_, g) => {
    let n = 0;
    for (let p = g; p < onehot.length; p += genres.length) n += onehot[p];
    return n;
  });
  const order = genres.map((_, g) => g).sort((a, b) => counts[a] - counts[b]);
  return {
    data: [{ type: "bar", orientation: "h", x: order.map((g) => counts[g]), y: order.map((g) => genres[g]), marker: { color: BLUE } }],
    layout: base("Movies per genre", "movies", "genre", { yaxis: { automargin: true }, height: 140 + 22 * genres.length }),
  };
}

/** Ratings per user and per movie against their rank, most active first, on log-log axes. */
export function activity(ratings: Ratings): Figure {
  const curve = (ids: Int32Array, name: string, color: string) => {
    const counts = new Map<number, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    const sorted = [...counts.values()].sort((a, b) => b - a);
    // Log-spaced ranks keep the figure small whatever the data size.
    const ranks = [...new Set(Array.from({ length: 200 }, (_, i) => Math.round(Math.pow(sorted.length, i / 199))))];
    return { type: "scatter", mode: "lines", name, x: ranks, y: ranks.map((r) => sorted[r - 1]), line: { color } };
  };
  return {
    data: [curve(ratings.userId, "users (activity)", BLUE), curve(ratings.movieId, "movies (popularity)", ORANGE)],
    layout: base("Ratings per user and per movie, by rank", "rank (1 = most ratings)", "ratings", {
      xaxis: { type: "log" }, yaxis: { type: "log" }, legend: { x: 0.98, xanchor: "right", y: 0.98 },
    }),
  };
}

/** Histogram of the stored neighbour similarities, in 50 bins over (0, 1]. */
export function similarityDistribution(sims: Float32Array): Figure {
  const bins = 50;
  const counts = new Array<number>(bins).fill(0);
  for (const s of sims) counts[Math.min(bins - 1, Math.floor(s * bins))]++;
  return {
    data: [{ type: "bar", x: counts.map((_, b) => (b + 0.5) / bins), y: counts, width: 1 / bins, marker: { color: BLUE } }],
    layout: base(`Cosine similarity of stored neighbours (${sims.length.toLocaleString("en-US")} pairs)`, "cosine", "neighbour pairs (log scale)", {
      // One tick per tenth and per power of ten: plotly's default log ticks label 2 and 5 of every decade too.
      xaxis: { range: [0, 1], dtick: 0.1 }, yaxis: { type: "log", dtick: 1, tickformat: ",d" }, bargap: 0.05,
    }),
  };
}

const SWEPT = ["precision", "recall", "ndcg", "hitrate"];
const COLORS = [BLUE, ORANGE, "#2ca02c", "#d62728"];

/**
 * Metrics of the model (solid) and the popularity baseline (dotted) as `n` varies (left, `k` fixed) and `k` varies
 * (right, `n` fixed); `fixed` holds the values each sweep kept.
 */
export function metricsChart(byN: SweepRow[], byK: SweepRow[], fixed: { n: number; k: number }): Figure {
  const data: Record<string, unknown>[] = [];
  for (const [panel, rows] of [[1, byN], [2, byK]] as const) {
    SWEPT.forEach((metric, i) => {
      for (const [who, dash] of [["model", "solid"], ["popularity", "dot"]] as const) {
        data.push({
          type: "scatter", mode: "lines+markers", name: `${metric} (${who})`, legendgroup: `${metric}-${who}`, showlegend: panel === 1,
          x: rows.map((r) => r.value), y: rows.map((r) => (who === "model" ? r.metrics : r.baseline)[metric]),
          line: { color: COLORS[i], dash }, xaxis: `x${panel}`, yaxis: `y${panel}`,
        });
      }
    });
  }
  return {
    data,
    layout: {
      title: { text: "Metrics as n and k vary: model (solid) and popularity baseline (dotted)" },
      grid: { rows: 1, columns: 2, pattern: "independent" },
      xaxis: { title: { text: `n (recommendations per user), at k = ${fixed.k}` }, type: "log", tickvals: byN.map((r) => r.value) },
      xaxis2: { title: { text: `k (neighbours per movie), at n = ${fixed.n}` }, type: "log", tickvals: byK.map((r) => r.value) },
      yaxis: { title: { text: "metric value" }, rangemode: "tozero" },
      yaxis2: { rangemode: "tozero" },
      legend: { orientation: "h", y: -0.25 },
      margin: { t: 50, r: 20, b: 60, l: 70 },
      height: 480,
    },
  };
}

/** The similarity comparison as grouped bars: one group per metric, one bar per method. */
export function comparisonChart(rows: ComparisonRow[]): Figure {
  return {
    data: rows.map((r) => ({ type: "bar", name: r.setting ? `${r.method} (${r.setting})` : r.method, x: SWEPT, y: SWEPT.map((m) => r.metrics[m]) })),
    layout: {
      title: { text: "Test metrics by model, beside the popularity baseline" },
      barmode: "group",
      xaxis: { title: { text: "metric (at n)" } },
      yaxis: { title: { text: "metric value" }, rangemode: "tozero" },
      legend: { orientation: "h", y: -0.2 },
      margin: { t: 50, r: 20, b: 60, l: 70 },
      height: 440,
    },
  };
}

/**
 * A <script> that defines window.Plotly from plotly.js-dist embedded in the output (gzip, base64):
 * a saved notebook draws its figures offline. Display it once, before the figures.
 */
export function plotlyBundleHtml(): string {
  const gz = gzipSync(readFileSync(require.resolve("plotly.js-dist")), { level: 9 }).toString("base64");
  // `module` makes the UMD bundle export to us; `define` hidden so classic Notebook's require.js does not claim it.
  return `<script>(function () {
  var bytes = Uint8Array.from(atob("${gz}"), function (c) { return c.charCodeAt(0); });
  new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text().then(function (src) {
    var module = { exports: {} };
    new Function("module", "exports", "define", src)(module, module.exports, undefined);
    window.Plotly = module.exports;
    (window.plotlyWaiting || []).splice(0).forEach(function (draw) { draw(); });
  });
})();</script><div>plotly.js ${require("plotly.js-dist/package.json").version} embedded for the figures below.</div>`;
}

/** A figure as HTML for a notebook output or a page: a div and the script that draws it once plotly.js is there. */
export function figureHtml(figure: Figure): string {
  const json = JSON.stringify(figure).replace(/</g, "\\u003c");
  const id = `figure-${fnv1a32(json).toString(16)}`;
  const height = Number(figure.layout.height ?? 400);
  return `<div id="${id}" class="plotly-figure" style="width:100%;min-width:600px;height:${height}px"></div><script>(function () {
  var figure = ${json};
  var draw = function () { window.Plotly.newPlot("${id}", figure.data, figure.layout, { responsive: true, displaylogo: false }); };
  if (window.Plotly) draw(); else (window.plotlyWaiting = window.plotlyWaiting || []).push(draw);
})();</script>`;
}
