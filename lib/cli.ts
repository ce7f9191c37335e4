#!/usr/bin/env node
import { existsSync } from "node:fs";
import path from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { reportToMlflow } from "./azure/mlflow";
import { BLOB_LOCATION_HELP } from "./blob";
import { compare, type ComparisonRow } from "./compare";
import { downloadCommand } from "./download";
import { integer, list, within } from "./args";
import { genresOf } from "./features";
import { DEFAULT_MODEL_DIR, loadModel, lockModelDir, type Model, saveModel, writeNeighbours } from "./model-io";
import { loadOptional } from "./optional";
import { DEFAULTS, describeModel, describeSetting, LIMITS, type Params, resolveParams, SIMILARITIES } from "./params";
import { progressReporter } from "./progress";
import { historyOf, type Recommendation, recommendForMovies, recommendForUser, similarTo, UnknownIdError } from "./recommend";
import { checkSource, resolveSource } from "./source";
import { serveCommand } from "./serve";
import { PRESETS } from "./synthetic";
import { indexOf } from "./split";
import { movieByTitle } from "./titles";
import { train, type TrainedModel } from "./train";
import { DEFAULT_GRID, DEFAULT_VALID_FRACTION, tune, type TuningRow } from "./tune";
import { defaultThreads } from "./workers";

const program = new Command("movielens-recsys")
  .description("Item-based movie recommender for the MovieLens datasets: neighbours by the spec's cosine (or rp3beta, asym, tfidf, bm25), implicit ALS, evaluation, serving, Azure ML.")
  .addHelpText("after", `
Start with:
  movielens-recsys download ml-latest-small --dest data
  movielens-recsys compare --data data/ml-latest-small --model-dir models/small
  movielens-recsys recommend --model-dir models/small --movies "Toy Story" "Matrix, The"`);

/** Human-readable lines: on stdout, or on stderr when stdout carries --json. */
const logOf = (o: { json?: boolean }) => (line: string) => (o.json ? console.error(line) : console.log(line));
const printJson = (value: unknown) => console.log(JSON.stringify(value, null, 2));
const JSON_OPTION = "print the results as JSON on stdout (progress goes to stderr)";

const MAX_THREADS = 256;

/** The options of every command that runs the pipeline: data, model, spec parameters, threads. */
function pipelineCommand(name: string): Command {
  return program.command(name)
    .addOption(new Option("--data <dir>", "a MovieLens folder holding ratings.csv and movies.csv (see `download`), or a Blob location (below)").conflicts("synthetic"))
    .addOption(new Option("--synthetic <preset>", "generate (once, cached) and use a synthetic MovieLens set").choices(Object.keys(PRESETS)))
    .option("--model-dir <dir>", "where to write the model", DEFAULT_MODEL_DIR)
    .option("--sample-users <n>", "keep only this many users, chosen by hash (default: all)", within("--sample-users", LIMITS.sampleUsers))
    .option("--seed <n>", "seed of sampling and the split", within("--seed", LIMITS.seed), DEFAULTS.seed)
    .option("--like-threshold <x>", "a rating >= this is a like (0..5)", within("--like-threshold", LIMITS.likeThreshold), DEFAULTS.likeThreshold)
    .option("--test-fraction <x>", "share of ratings held out for test, between 0 and 1", within("--test-fraction", LIMITS.testFraction), DEFAULTS.testFraction)
    .option("--n <n>", `recommendations per user in evaluation (1..${LIMITS.n.max})`, within("--n", LIMITS.n), DEFAULTS.n)
    .option("--eval-users <n>", "evaluate this many users, chosen by hash (default: all)", within("--eval-users", LIMITS.evalUsers))
    .option("--threads <n>", "worker threads (the results do not depend on it)", integer("--threads", 1, MAX_THREADS), defaultThreads())
    .option("--no-refit", "save the evaluation model (train split only) instead of the model refit on all ratings")
    .option("--json", JSON_OPTION)
    .addHelpText("after", `\nWith neither --data nor --synthetic, uses the synthetic 'small' preset.\n\n${BLOB_LOCATION_HELP}`);
}

const paramsOf = (o: Record<string, never>): Partial<Params> => ({
  seed: o.seed, likeThreshold: o.likeThreshold, testFraction: o.testFraction, k: o.k, n: o.n,
  similarity: o.similarity, shrink: o.shrink, beta: o.beta, asym: o.asym, k1: o.k1, b: o.b, sampleUsers: o.sampleUsers, evalUsers: o.evalUsers,
});

/** Stage lines through `log`, progress on stderr. */
const reportTo = (log: (line: string) => void) => ({
  onStage: (stage: string, ms: number, summary: string) => log(`${stage.padEnd(16)} ${(ms / 1000).toFixed(2).padStart(7)} s  ${summary}`),
  onProgress: progressReporter(),
});

/** Checks the options, --data and --model-dir (locking it) before any work, then gets the data. */
async function begin(o: Record<string, never>) {
  const params = resolveParams(paramsOf(o));
  await checkSource(o);
  await lockModelDir(o.modelDir);
  const log = logOf(o);
  return { params, log, ...(await resolveSource(o, log)) };
}

/** What train and tune print with --json. */
const resultJson = (source: string, modelDir: string, model: TrainedModel) => {
  const { fit, params, metrics, baseline, counts, timings } = model.manifest;
  return { source, modelDir, fit, params, metrics, baseline, counts, timings };
};

pipelineCommand("train")
  .description("Run every pipeline step (ingest, genres, merge, sample, split, encode, CSR, neighbours, evaluate on test, refit on all ratings) and save the model.")
  .option("--k <n>", `neighbours kept per movie (1..${LIMITS.k.max})`, within("--k", LIMITS.k), DEFAULTS.k)
  .addOption(new Option("--similarity <name>", "neighbour weights: the spec's cosine, rp3beta, or asym, tfidf, bm25 (docs/models.md)").choices(SIMILARITIES).default(DEFAULTS.similarity))
  .option("--shrink <x>", "cosine shrinkage: c / (sqrt(n_m * n_j) + shrink); also asym's and tfidf's", within("--shrink", LIMITS.shrink), DEFAULTS.shrink)
  .option("--beta <x>", "rp3beta's popularity penalty (0..1)", within("--beta", LIMITS.beta), DEFAULTS.beta)
  .option("--asym <x>", "asym's and tfidf's asymmetry: c / (n_m ^ asym * n_j ^ (1 - asym)), 0.5 is the cosine (0..1)", within("--asym", LIMITS.asym), DEFAULTS.asym)
  .option("--k1 <x>", "bm25's term saturation K1 (>= 0)", within("--k1", LIMITS.k1), DEFAULTS.k1)
  .option("--b <x>", "bm25's length normalisation B (0..1)", within("--b", LIMITS.b), DEFAULTS.b)
  .addHelpText("after", "\nExample: movielens-recsys download ml-latest-small --dest data\n         movielens-recsys train --data data/ml-latest-small --model-dir models/small")
  .action(async (o) => {
    const { params, log, dir, source } = await begin(o);
    log(`training on ${source}`);
    const model = await train(dir, params, { source, threads: o.threads, refit: o.refit, ...reportTo(log) });
    if (!o.json) console.log(`\n${metricsTable(model.manifest.metrics, model.manifest.baseline!, o.n)}\n`);
    await saveModel(o.modelDir, model);
    if (o.json) printJson(resultJson(source, o.modelDir, model));
    else console.log(`model written to ${o.modelDir}`);
    await reportToMlflow(model.manifest); // in an Azure ML job: to the job's MLflow run
  });

pipelineCommand("tune")
  .description("Choose the similarity, its parameter and k on a validation split carved out of train (never test), then train that model and score test once.")
  .option("--similarities <names>", "similarities to try", list((v) => {
    if (!(SIMILARITIES as readonly string[]).includes(v)) throw new InvalidArgumentError(`unknown similarity "${v}" (expected ${SIMILARITIES.join(", ")})`);
    return v;
  }), DEFAULT_GRID.similarity)
  .option("--shrinks <xs>", "cosine, asym and tfidf shrink values to try", list(within("each shrink", LIMITS.shrink)), DEFAULT_GRID.shrink)
  .option("--betas <xs>", "rp3beta beta values to try", list(within("each beta", LIMITS.beta)), DEFAULT_GRID.beta)
  .option("--alphas <xs>", "rp3beta alpha values to try (each with every beta)", list(within("each alpha", LIMITS.alpha)), DEFAULT_GRID.alpha)
  .option("--asyms <xs>", "asym and tfidf asym values to try (each with every shrink)", list(within("each asym", LIMITS.asym)), DEFAULT_GRID.asym)
  .option("--k1s <xs>", "bm25 K1 values to try", list(within("each k1", LIMITS.k1)), DEFAULT_GRID.k1)
  .option("--bs <xs>", "bm25 B values to try (each with every K1)", list(within("each b", LIMITS.b)), DEFAULT_GRID.b)
  .option("--ks <ns>", "neighbour counts to try", list(within("each k", LIMITS.k)), DEFAULT_GRID.k)
  .option("--factors <ns>", "ALS factor counts to try (\"\": no ALS, nor blend)", (v) => (v.trim() === "" ? [] : list(within("each factors", LIMITS.factors))(v)), DEFAULT_GRID.factors)
  .option("--regularizations <xs>", "ALS regularization values to try", list(within("each regularization", LIMITS.regularization)), DEFAULT_GRID.regularization)
  .option("--confidences <xs>", "ALS confidence values to try (c = 1 + confidence * like)", list(within("each confidence", LIMITS.confidence)), DEFAULT_GRID.confidence)
  .option("--iterations <ns>", "ALS iteration counts to try", list(within("each iterations", LIMITS.iterations)), DEFAULT_GRID.iterations)
  .option("--weights <xs>", "blend weights of ALS to try, on the best neighbours and the best ALS", list(within("each weight", LIMITS.weight)), DEFAULT_GRID.weight)
  .option("--valid-fraction <x>", "share of train ratings held out to score the grid, between 0 and 1", within("--valid-fraction", LIMITS.testFraction), DEFAULT_VALID_FRACTION)
  .option("--valid-splits <n>", "validation splits to score the grid on, each row the mean over them (1: the spec's one split; more: a less noisy choice, that many times the time)", integer("--valid-splits", 1, 20), 1)
  .addHelpText("after", "\nExample: movielens-recsys tune --data data/ml-latest-small --model-dir models/tuned")
  .action(async (o) => {
    const { params, log, dir, source } = await begin(o);
    log(`tuning on ${source}`);
    const header = ["model", "similarity", "shrink", "beta", "alpha", "asym", "k1", "b", "k", "factors", "reg", "conf", "weight", `precision@${o.n}`, `recall@${o.n}`, `ndcg@${o.n}`, "hitrate", `map@${o.n}`, "mrr"];
    const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(11) : c.padStart(i < 13 ? 8 : 13))).join("");
    const show = (x: number | null) => (x === null ? "-" : String(x));
    const rowLine = (r: TuningRow) => line([r.model, r.similarity ?? "-", ...[r.shrink, r.beta, r.alpha, r.asym, r.k1, r.b, r.k, r.factors, r.regularization, r.confidence, r.weight].map(show),
      ...[r.precision, r.recall, r.ndcg, r.hitrate, r.map, r.mrr].map((x) => x.toFixed(4))]);
    const live = !o.json && process.stdout.isTTY; // else the table comes whole at the end, not between progress lines
    const report = reportTo(log);
    const grid = {
      similarity: o.similarities, shrink: o.shrinks, beta: o.betas, alpha: o.alphas, asym: o.asyms, k1: o.k1s, b: o.bs, k: o.ks,
      factors: o.factors, regularization: o.regularizations, confidence: o.confidences, iterations: o.iterations, weight: o.weights,
    };
    const t0 = performance.now();
    const { model, rows, best } = await tune(dir, params, grid, {
      source, threads: o.threads, refit: o.refit, validFraction: o.validFraction, validSplits: o.validSplits, onProgress: report.onProgress,
      onStage: (stage, ms, summary) => stage !== "tuning" && report.onStage(stage, ms, summary),
      onRow: (r) => live && console.log(`${r.similarity === "popularity" ? `\nvalidation grid\n${line(header)}\n` : ""}${rowLine(r)}`),
    });
    const seconds = (performance.now() - t0) / 1000;
    await saveModel(o.modelDir, model);
    if (o.json) return printJson({ ...resultJson(source, o.modelDir, model), grid: rows, chosen: best });
    if (!live) console.log(`\nvalidation grid\n${[line(header), ...rows.map(rowLine)].join("\n")}`);
    console.log(`\ntuning took ${seconds.toFixed(1)} s; chosen on validation: ${describeModel(model.manifest.params)}, scored once on test:\n`);
    console.log(`${metricsTable(model.manifest.metrics, model.manifest.baseline!, o.n)}\n`);
    console.log(`model written to ${o.modelDir}`);
  });

pipelineCommand("compare")
  .description("The spec's cosine, the recommended neighbours setting (1.4-1.5x popularity on real data; tune searches further) and popularity, on the same test users, in one table; saves the recommended model. What `npm start` runs.")
  .addHelpText("after", "\nExample: movielens-recsys compare --data data/ml-latest-small --model-dir models/small")
  .action(async (o) => {
    const { params, log, dir, source } = await begin(o);
    log(`comparing on ${source}`);
    const { rows, model } = await compare(dir, params, { source, threads: o.threads, refit: o.refit, ...reportTo(log) });
    await saveModel(o.modelDir, model);
    if (o.json) return printJson({ source, modelDir: o.modelDir, rows });
    const label = (r: ComparisonRow) => (r.params ? `${r.params.similarity} (${r.name})` : r.name);
    const names = ["precision", "recall", "ndcg", "hitrate"] as const;
    const popularity = rows[2].metrics.precision;
    const header = [`test, ${rows[0].metrics.users.toLocaleString("en-US")} users`, ...names.map((m) => (m === "hitrate" ? m : `${m}@${o.n}`)), "vs popularity"];
    const cells = (r: ComparisonRow) => [label(r), ...names.map((m) => r.metrics[m].toFixed(4)), `${(r.metrics.precision / popularity).toFixed(2)}x`];
    const width = Math.max(...rows.map((r) => label(r).length), header[0].length);
    console.log(`\n${[header, ...rows.map(cells)].map(([first, ...rest]) => first.padEnd(width) + rest.map((c, i) => c.padStart(header[i + 1].length + 2)).join("")).join("\n")}\n`);
    const [original, recommended] = rows.map((r) => r.params && describeSetting(r.params));
    console.log(`original: the spec's ${original}; recommended: ${recommended}, 1.4-1.5x popularity on real MovieLens data (\`tune\` searches further: ALS, the blend).`);
    if (source.startsWith("synthetic:")) console.log("Synthetic ratings have little structure to find; on real MovieLens data the gap is wider (the second command below).");
    console.log(`model written to ${o.modelDir} (the recommended setting)\n`);
    console.log(`next: movielens-recsys recommend --model-dir ${o.modelDir} --user 1`);
    console.log("      movielens-recsys download ml-latest-small --dest data && movielens-recsys compare --data data/ml-latest-small");
  });

/** `--movies` values: movieIds ("1,2,3") or titles, each resolved in the model. */
function movieEncs(model: Model, values: string[]): number[] {
  const encs: number[] = [], unknown: number[] = [];
  for (const value of values) {
    if (!/^\s*\d+\s*(,\s*\d+\s*)*$/.test(value)) {
      encs.push(movieByTitle(model, value));
      continue;
    }
    for (const id of value.split(",").map(Number)) {
      const m = indexOf(model.movies.movieId, id);
      if (m < 0) unknown.push(id);
      encs.push(m);
    }
  }
  if (unknown.length > 0) throw new UnknownIdError("movieId", unknown);
  return encs;
}

const MAX_ID = 2 ** 31 - 1;

program.command("recommend")
  .description("Recommend movies to a user of the model (never one they rated), or to someone who liked the given movies.")
  .option("--model-dir <dir>", "the trained model", DEFAULT_MODEL_DIR)
  .addOption(new Option("--user <id>", "a userId the model was trained on").argParser(integer("--user", 0, MAX_ID)))
  .addOption(new Option("--movies <movie...>", "movies the person liked: movieIds (1,2,3) or titles (\"Toy Story\" \"Matrix\"); with --user: liked just now, beside their history"))
  .option("--n <n>", `how many (1..${LIMITS.n.max})`, within("--n", LIMITS.n), DEFAULTS.n)
  .option("--json", JSON_OPTION)
  .addHelpText("after", '\nExamples: movielens-recsys recommend --user 1\n          movielens-recsys recommend --movies "Toy Story" "Matrix, The" --n 5\n          movielens-recsys recommend --user 1 --movies 296')
  .action(async (o, command: Command) => {
    if (o.user === undefined && o.movies === undefined) command.error("error: give --user ID or --movies MOVIE... (movieIds or titles)");
    const model = await modelAt(o.modelDir);
    const movies = o.movies === undefined ? [] : movieEncs(model, o.movies).map((m) => ({ movieId: model.movies.movieId[m], title: model.movies.title[m] }));
    const ids = movies.map((m) => m.movieId), titles = movies.map((m) => m.title).join("; ");
    let query: Record<string, unknown>, heading: string, result: ReturnType<typeof recommendForUser>;
    if (o.user !== undefined) {
      result = recommendForUser(model, o.user, o.n, ids);
      const { rated, liked } = historyOf(model, o.user);
      query = { user: o.user, liked: liked.length, rated: rated.length, ...(movies.length ? { movies } : {}) };
      const stored = model.manifest.fit === "train" ? " in train" : "";
      heading = `Recommendations for user ${o.user} (liked ${liked.length} of ${rated.length} rated movies${stored}${movies.length ? `, and just now ${titles}` : ""}):`;
    } else {
      result = recommendForMovies(model, ids, o.n);
      query = { movies };
      heading = `Recommendations for someone who liked ${titles}:`;
    }
    if (o.json) return printJson({ query, ...result });
    console.log(heading);
    if (result.fallback) console.log("(no likes to go on: the most popular movies instead)");
    console.log(recommendationTable(result.recommendations, result.fallback ? "likes" : "score"));
  });

/** The model in --model-dir, saying so when there is none. */
async function modelAt(dir: string): Promise<Model> {
  if (!existsSync(path.join(dir, "model.json"))) throw new Error(`--model-dir ${dir}: no model there (no model.json); train one with: movielens-recsys train --model-dir ${dir}`);
  return loadModel(dir).catch((e: Error) => {
    throw new Error(`--model-dir ${dir}: cannot load the model: ${e.message}`);
  });
}

program.command("similar")
  .description("Movies most similar to one movie (its stored neighbours).")
  .option("--model-dir <dir>", "the trained model", DEFAULT_MODEL_DIR)
  .addOption(new Option("--movie <id>", "a movieId").argParser(integer("--movie", 0, MAX_ID)).conflicts("title"))
  .option("--title <title>", "a title, or enough of one (\"Toy Story\", \"Matrix, The (1999)\")")
  .option("--n <n>", `how many (1..${LIMITS.n.max})`, within("--n", LIMITS.n), DEFAULTS.n)
  .option("--json", JSON_OPTION)
  .addHelpText("after", '\nExample: movielens-recsys similar --title "Toy Story" --n 5')
  .action(async (o, command: Command) => {
    if (o.movie === undefined && o.title === undefined) command.error("error: give --movie ID or --title TITLE");
    const model = await modelAt(o.modelDir);
    const movieId = o.title !== undefined ? model.movies.movieId[movieByTitle(model, o.title)] : o.movie;
    const result = similarTo(model, movieId, o.n);
    const m = indexOf(model.movies.movieId, movieId);
    const movie = { movieId, title: model.movies.title[m], genres: genresOf(model.movies.genres[m]) };
    if (o.json) return printJson({ query: { movie }, ...result });
    console.log(`Movies most similar to ${movie.title} (movieId ${movieId}):`);
    console.log(recommendationTable(result.recommendations, "sim"));
  });

program.command("export-neighbours")
  .description("Write every movie's neighbours: movieId<TAB>neighbourMovieId:sim,... in stored order, sims with 6 decimals.")
  .option("--model-dir <dir>", "the trained model", DEFAULT_MODEL_DIR)
  .requiredOption("--out <file>", "the file to write (replaced atomically)")
  .action(async (o) => {
    const lines = await writeNeighbours(await modelAt(o.modelDir), o.out);
    console.log(`${lines} movies with neighbours written to ${o.out}`);
  });

/** The azure commands, loaded only when named: they need the Azure SDKs, optional dependencies that the image leaves out. */
function azureCommand(): Command {
  const [word, next] = process.argv.slice(2);
  if (word === "azure" || (word === "help" && next === "azure")) {
    return loadOptional("the azure commands", () => require("./azure/cli") as typeof import("./azure/cli")).azureCommand;
  }
  return new Command("azure").description("Train and deploy on Azure ML, step by step or all at once (azure --help lists the steps).");
}

/** After a usage error, one hint line instead of the whole help. */
function hintAfterErrors(command: Command, names: string[] = []): void {
  const path = [...names, command.name()];
  command.showHelpAfterError(`(see: ${path.join(" ")} --help)`);
  for (const sub of command.commands) hintAfterErrors(sub, path);
}

function metricsTable(metrics: Record<string, number>, baseline: Record<string, number>, n: number): string {
  const rows = [["metric", "model", "popularity"]];
  for (const [name, value] of Object.entries(metrics)) {
    const show = (x: number) => (Number.isInteger(x) ? x.toLocaleString("en-US") : x.toFixed(4));
    const label = ["precision", "recall", "ndcg", "map"].includes(name) ? `${name}@${n}` : name;
    rows.push([label, show(value), show(baseline[name])]);
  }
  return rows.map(([a, b, c]) => `${a.padEnd(14)}${b.padStart(10)}${c.padStart(12)}`).join("\n");
}

/** Ranked movies under a header row; `value` names the number column (a score, a sim, or train likes). */
function recommendationTable(recs: Recommendation[], value: "score" | "sim" | "likes"): string {
  if (recs.length === 0) return "(no recommendations)";
  const show = (x: number) => (value === "likes" ? String(x) : x.toFixed(4));
  const header = `${"#".padStart(4)}  ${"movieId".padStart(7)}  ${value.padStart(9)}  title  [genres]`;
  return [header, ...recs.map((r, i) => `${`${i + 1}.`.padStart(4)}  ${String(r.movieId).padStart(7)}  ${show(r.score).padStart(9)}  ${r.title}  [${r.genres.join(", ")}]`)].join("\n");
}

/** No stack trace reaches a user: every failure is one `error:` line (several when it lists choices). */
const fail = (e: unknown) => {
  console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
};
process.on("uncaughtException", (e) => {
  fail(e);
  process.exit(1);
});

async function main(): Promise<void> {
  program.addCommand(downloadCommand).addCommand(azureCommand()).addCommand(serveCommand());
  hintAfterErrors(program);
  await program.parseAsync();
}

main().catch(fail);
