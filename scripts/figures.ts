import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { oneHotGenres } from "../lib/features";
import { comparisonChart, figureHtml, metricsChart, plotlyBundleHtml } from "../lib/notebook/figures";
import { readMovies } from "../lib/ingest";
import { type Model, loadModel, saveModel } from "../lib/model-io";
import { resolveParams } from "../lib/params";
import { recommendForUser, similarTo } from "../lib/recommend";
import { indexOf } from "../lib/split";
import { COMPARE_GRID, compareModels, SWEEP, sweep } from "../lib/notebook/sweep";
import { syntheticDir } from "../lib/synthetic";
import { comparisonTable, historyTable, moviesTable, oneHotTable, recommendationsTable, tableHtml } from "../lib/notebook/tables";
import { train } from "../lib/train";
import { tune } from "../lib/tune";
import { openChromium } from "./chromium";
import { ROOT } from "./jupyter";

const IMG = path.join(ROOT, "img");
const REAL = path.join(ROOT, "data", "ml-latest-small"); // where `download ml-latest-small` puts it

// Close to Jupyter's own table style, so the PNGs look like the notebooks (alignment comes with each table).
const CSS = `
body { margin: 0; padding: 12px; background: #fff; font: 13px "DejaVu Sans", sans-serif; color: #111; }
section { display: table; padding: 12px; margin-bottom: 24px; background: #fff; }
section.figure { width: 1100px; }
table.dataframe { border-collapse: collapse; }
table.dataframe caption { caption-side: top; text-align: left; font-weight: bold; padding: 0 0 8px; }
table.dataframe th { border-bottom: 1px solid #555; padding: 5px 9px; }
table.dataframe td { padding: 5px 9px; white-space: nowrap; }
table.dataframe tbody tr:nth-child(odd) { background: #f3f3f3; }
section.onehot th:nth-child(n+3), section.onehot td:nth-child(n+3) { padding: 5px; }`;

/**
 * `npm run figures`: the README's img/*.png from a real run, the same tables and plotly figures as the notebooks,
 * drawn in headless Chromium. Data: MOVIELENS_DATA, else data/ml-latest-small when present, else the synthetic set.
 */
async function main(): Promise<void> {
  const dir = process.env.MOVIELENS_DATA ? path.resolve(process.env.MOVIELENS_DATA)
    : existsSync(path.join(REAL, "ratings.csv")) ? REAL : await syntheticDir("small");
  console.log(`figures from ${dir}`);
  const params = resolveParams({});
  const { movies } = await readMovies(path.join(dir, "movies.csv"));
  const modelDir = path.join(await mkdtemp(path.join(os.tmpdir(), "figures-model-")), "model");
  let model: Model;
  try {
    await saveModel(modelDir, await train(dir, params));
    model = await loadModel(modelDir);
  } finally {
    await rm(path.dirname(modelDir), { recursive: true, force: true });
  }
  const userId = exampleUser(model);
  const movieId = model.movies.movieId[model.popular[0]];
  const title = model.movies.title[indexOf(model.movies.movieId, movieId)];
  console.log(`user ${userId}, movie ${movieId} (${title}); sweeping n and k`);
  const byN = await sweep(dir, params, "n", SWEEP.n), byK = await sweep(dir, params, "k", SWEEP.k);
  console.log("tuning the similarities on the validation split");
  const comparison = await compareModels(dir, params, (await tune(dir, params, COMPARE_GRID)).rows);

  const shots: [file: string, html: string, style?: string][] = [
    ["genres-before.png", tableHtml(moviesTable(movies), "movies.csv: genres as one field", { total: movies.movieId.length })],
    ["genres-after.png", tableHtml(oneHotTable(movies, oneHotGenres(movies)), "after one-hot: one 0/1 column per genre", { total: movies.movieId.length, verticalFrom: 2 }), "onehot"],
    ["user-liked.png", tableHtml(historyTable(model, userId), `user ${userId}: every movie they rated, the history recommendations start from`)],
    ["user-recommendations.png", tableHtml(recommendationsTable(recommendForUser(model, userId, params.n).recommendations), `recommended to user ${userId}`)],
    ["similar-movies.png", tableHtml(recommendationsTable(similarTo(model, movieId, params.n).recommendations), `movies similar to ${title}`)],
    ["metrics.png", figureHtml(metricsChart(byN, byK, params)), "figure"],
    ["similarities.png", `${tableHtml(comparisonTable(comparison), `test metrics at n = ${params.n}: settings tuned on a validation split of train`)}${figureHtml(comparisonChart(comparison))}`, "figure"],
  ];
  const { context, close } = await openChromium({ deviceScaleFactor: 2 }); // sharp on high-density screens
  try {
    const page = await context.newPage();
    await page.setViewportSize({ width: 2200, height: 1200 });
    await page.setContent(`<html><head><style>${CSS}</style></head><body>${plotlyBundleHtml()}${shots.map(([file, html, style = ""]) =>
      `<section data-png="${file}" class="${style}">${html}</section>`).join("\n")}</body></html>`);
    // In-page code as a string: the project compiles without the DOM library.
    await page.waitForFunction(`[...document.querySelectorAll(".plotly-figure")].every((f) => f.querySelector(".main-svg"))`, undefined, { timeout: 60_000 });
    await mkdir(IMG, { recursive: true });
    for (const [file] of shots) {
      await page.locator(`section[data-png="${file}"]`).screenshot({ path: path.join(IMG, file) });
      console.log(`img/${file}`);
    }
  } finally {
    await close();
  }
}

/** The first user with 8 to 15 train likes: a history short enough to show whole. */
function exampleUser(model: Model): number {
  const { userId, indptr, liked } = model.users;
  for (let u = 0; u < userId.length; u++) {
    let likes = 0;
    for (let p = indptr[u]; p < indptr[u + 1]; p++) likes += liked[p];
    if (likes >= 8 && likes <= 15) return userId[u];
  }
  return userId[0];
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
