#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from "commander";
import { azureCommand } from "./azure/cli";
import { reportToMlflow } from "./azure/mlflow";
import { BLOB_LOCATION_HELP } from "./blob";
import { downloadCommand } from "./download";
import { integer, number } from "./args";
import { DEFAULT_MODEL_DIR, loadModel, lockModelDir, saveModel, writeNeighbours } from "./model-io";
import { DEFAULTS, type Params, SIMILARITIES } from "./params";
import { progressReporter } from "./progress";
import { type Recommendation, recommendForMovies, recommendForUser, similarTo } from "./recommend";
import { resolveSource } from "./source";
import { serveCommand } from "./serve";
import { PRESETS } from "./synthetic";
import { train } from "./train";
import { DEFAULT_GRID, DEFAULT_VALID_FRACTION, tune } from "./tune";
import { defaultThreads } from "./workers";

const idList = (value: string) => value.split(",").map((id) => integer("each movie id")(id.trim()));

const program = new Command("movielens-recsys")
  .description("Item-based movie recommender for the MovieLens datasets: neighbours by the spec's cosine (or rp3beta), evaluation, serving, Azure ML.")
  .showHelpAfterError();

/** The options of every command that runs the pipeline: data, model, spec parameters, threads. */
function pipelineCommand(name: string): Command {
  return program.command(name)
    .addOption(new Option("--data <dir>", "a MovieLens directory holding ratings.csv and movies.csv, or a Blob location (below)").conflicts("synthetic"))
    .addOption(new Option("--synthetic <preset>", "generate (once, cached) and use a synthetic MovieLens set").choices(Object.keys(PRESETS)))
    .option("--model-dir <dir>", "where to write the model", DEFAULT_MODEL_DIR)
    .option("--sample-users <n>", "keep only this many users, chosen by hash (default: all)", integer("--sample-users", 1))
    .option("--seed <n>", "seed of sampling and the split", integer("--seed"), DEFAULTS.seed)
    .option("--like-threshold <x>", "a rating >= this is a like", number("--like-threshold"), DEFAULTS.likeThreshold)
    .option("--test-fraction <x>", "share of ratings held out for test", number("--test-fraction"), DEFAULTS.testFraction)
    .option("--n <n>", "recommendations per user in evaluation", integer("--n", 1), DEFAULTS.n)
    .option("--eval-users <n>", "evaluate this many users, chosen by hash (default: all)", integer("--eval-users", 1))
    .option("--threads <n>", "worker threads (the results do not depend on it)", integer("--threads", 1), defaultThreads())
    .option("--no-refit", "save the evaluation model (train split only) instead of the model refit on all ratings")
    .addHelpText("after", `\nWith neither --data nor --synthetic, uses the synthetic 'small' preset.\n\n${BLOB_LOCATION_HELP}`);
}

const paramsOf = (o: Record<string, never>): Partial<Params> => ({
  seed: o.seed, likeThreshold: o.likeThreshold, testFraction: o.testFraction, k: o.k, n: o.n,
  similarity: o.similarity, shrink: o.shrink, beta: o.beta, sampleUsers: o.sampleUsers, evalUsers: o.evalUsers,
});

const report = {
  onStage: (stage: string, ms: number, summary: string) => console.log(`${stage.padEnd(16)} ${(ms / 1000).toFixed(2).padStart(7)} s  ${summary}`),
  onProgress: progressReporter(),
};

pipelineCommand("train")
  .description("Run every pipeline step (ingest, genres, merge, sample, split, encode, CSR, neighbours, evaluate) and save the model.")
  .option("--k <n>", "neighbours kept per movie", integer("--k", 1), DEFAULTS.k)
  .addOption(new Option("--similarity <name>", "neighbour weights: the spec's cosine, or rp3beta").choices(SIMILARITIES).default(DEFAULTS.similarity))
  .option("--shrink <x>", "cosine shrinkage: c / (sqrt(n_m * n_j) + shrink)", number("--shrink"), DEFAULTS.shrink)
  .option("--beta <x>", "rp3beta's popularity penalty", number("--beta"), DEFAULTS.beta)
  .addHelpText("after", "\nExample: movielens-recsys train --data ../shared/data/ml-latest-small --model-dir models/small")
  .action(async (o) => {
    await lockModelDir(o.modelDir);
    const { dir, source } = await resolveSource({ data: o.data, synthetic: o.synthetic });
    console.log(`training on ${source}`);
    const model = await train(dir, paramsOf(o), { source, threads: o.threads, refit: o.refit, ...report });
    console.log(`\n${metricsTable(model.manifest.metrics, model.manifest.baseline!, o.n)}\n`);
    await saveModel(o.modelDir, model);
    console.log(`model written to ${o.modelDir}`);
    await reportToMlflow(model.manifest); // in an Azure ML job: to the job's MLflow run
  });

const list = <T>(parse: (v: string) => T) => (value: string) => value.split(",").map((v) => parse(v.trim()));

pipelineCommand("tune")
  .description("Choose the similarity, its parameter and k on a validation split carved out of train (never test), then train that model and score test once.")
  .option("--similarities <names>", "similarities to try", list((v) => {
    if (!(SIMILARITIES as readonly string[]).includes(v)) throw new InvalidArgumentError(`unknown similarity "${v}" (expected ${SIMILARITIES.join(", ")})`);
    return v;
  }), DEFAULT_GRID.similarity)
  .option("--shrinks <xs>", "cosine shrink values to try", list(number("each shrink")), DEFAULT_GRID.shrink)
  .option("--betas <xs>", "rp3beta beta values to try", list(number("each beta")), DEFAULT_GRID.beta)
  .option("--ks <ns>", "neighbour counts to try", list(integer("each k", 1)), DEFAULT_GRID.k)
  .option("--valid-fraction <x>", "share of train ratings held out to score the grid", number("--valid-fraction"), DEFAULT_VALID_FRACTION)
  .action(async (o) => {
    await lockModelDir(o.modelDir);
    const { dir, source } = await resolveSource({ data: o.data, synthetic: o.synthetic });
    console.log(`tuning on ${source}`);
    const header = ["similarity", "shrink", "beta", "k", `precision@${o.n}`, `recall@${o.n}`, `ndcg@${o.n}`, "hitrate"];
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(11) : c.padStart(i < 4 ? 7 : 13))).join("");
    let first = true;
    const { model, best } = await tune(dir, paramsOf(o), { similarity: o.similarities, shrink: o.shrinks, beta: o.betas, k: o.ks }, {
      source, threads: o.threads, refit: o.refit, validFraction: o.validFraction, onProgress: report.onProgress,
      onStage: (stage, ms, summary) => stage !== "tuning" && report.onStage(stage, ms, summary),
      onRow: (r) => {
        if (first) { console.log(`\nvalidation grid\n${line(header)}`); first = false; }
        const show = (x: number | null) => (x === null ? "-" : String(x));
        console.log(line([r.similarity, show(r.shrink), show(r.beta), show(r.k), ...[r.precision, r.recall, r.ndcg, r.hitrate].map((x) => x.toFixed(4))]));
      },
    });
    console.log(`\nchosen: ${best.similarity}${best.similarity === "cosine" ? ` shrink=${best.shrink}` : ` beta=${best.beta}`} k=${best.k}, scored once on test:\n`);
    console.log(`${metricsTable(model.manifest.metrics, model.manifest.baseline!, o.n)}\n`);
    await saveModel(o.modelDir, model);
    console.log(`model written to ${o.modelDir}`);
  });

program.command("recommend")
  .description("Recommend movies to a user of the model (never one they rated), or to someone who liked the given movies.")
  .option("--model-dir <dir>", "the trained model", DEFAULT_MODEL_DIR)
  .addOption(new Option("--user <id>", "a userId the model was trained on").argParser(integer("--user")))
  .addOption(new Option("--movies <ids>", "comma-separated movieIds the person liked (with --user: liked just now, beside their history)").argParser(idList))
  .option("--n <n>", "how many", integer("--n", 1), DEFAULTS.n)
  .action(async (o) => {
    if (o.user === undefined && o.movies === undefined) program.error("recommend: give --user ID or --movies ID,ID,...");
    const model = await loadModel(o.modelDir);
    const result = o.user !== undefined ? recommendForUser(model, o.user, o.n, o.movies) : recommendForMovies(model, o.movies, o.n);
    if (result.fallback) console.log("no likes for this user: the most popular movies instead");
    console.log(recommendationTable(result.recommendations));
  });

program.command("similar")
  .description("Movies most similar to one movie (its stored neighbours).")
  .option("--model-dir <dir>", "the trained model", DEFAULT_MODEL_DIR)
  .requiredOption("--movie <id>", "a movieId", integer("--movie"))
  .option("--n <n>", "how many", integer("--n", 1), DEFAULTS.n)
  .action(async (o) => {
    const model = await loadModel(o.modelDir);
    console.log(recommendationTable(similarTo(model, o.movie, o.n).recommendations));
  });

program.command("export-neighbours")
  .description("Write every movie's neighbours: movieId<TAB>neighbourMovieId:sim,... in stored order, sims with 6 decimals.")
  .option("--model-dir <dir>", "the trained model", DEFAULT_MODEL_DIR)
  .requiredOption("--out <file>", "the file to write (replaced atomically)")
  .action(async (o) => {
    const lines = await writeNeighbours(await loadModel(o.modelDir), o.out);
    console.log(`${lines} movies with neighbours written to ${o.out}`);
  });

program.addCommand(downloadCommand);
program.addCommand(azureCommand);
program.addCommand(serveCommand());

function metricsTable(metrics: Record<string, number>, baseline: Record<string, number>, n: number): string {
  const rows = [["metric", "model", "popularity"]];
  for (const [name, value] of Object.entries(metrics)) {
    const show = (x: number) => (Number.isInteger(x) ? x.toLocaleString("en-US") : x.toFixed(4));
    const label = ["precision", "recall", "ndcg"].includes(name) ? `${name}@${n}` : name;
    rows.push([label, show(value), show(baseline[name])]);
  }
  return rows.map(([a, b, c]) => `${a.padEnd(14)}${b.padStart(10)}${c.padStart(12)}`).join("\n");
}

function recommendationTable(recs: Recommendation[]): string {
  if (recs.length === 0) return "(no recommendations)";
  return recs.map((r, i) => `${String(i + 1).padStart(3)}. ${String(r.movieId).padStart(7)}  ${r.score.toFixed(4).padStart(9)}  ${r.title}  [${r.genres.join(", ")}]`).join("\n");
}

program.parseAsync().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
