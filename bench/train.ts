// npm run bench: the full training (evaluation on the split, then the refit on all ratings), stage by stage, with wall time, throughput and peak RSS,
// and the plain single-threaded neighbours for comparison.
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Command, Option } from "commander";
import { integer } from "../lib/args";
import { saveModel } from "../lib/model-io";
import type { Csr } from "../lib/csr";
import { type Neighbours, neighboursOf } from "../lib/neighbours";
import { resolveParams } from "../lib/params";
import { progressReporter } from "../lib/progress";
import { type Preset, PRESETS, syntheticDir } from "../lib/synthetic";
import { assemble, evaluateTest, fitNeighbours, prepare, refit, runOf } from "../lib/train";
import { defaultThreads } from "../lib/workers";
import { plainNeighbours } from "./reference";

const options = new Command("bench")
  .description("Time the full training (ingest to saved model) stage by stage; --data for any MovieLens directory.")
  .addOption(new Option("--data <dir>", "a MovieLens directory").conflicts("synthetic"))
  .addOption(new Option("--synthetic <preset>", "a synthetic set, generated once and cached").choices(Object.keys(PRESETS)).default("32m"))
  .option("--threads <n>", "worker threads", integer("--threads", 1), defaultThreads())
  .addOption(new Option("--reference <how>", "plain single-threaded neighbours: all movies, every 20th (times 20), or none")
    .choices(["all", "sample", "none"]).default("auto", "all up to 20,000 movies, else sample"))
  .parse()
  .opts();

/** Peak RSS since the last call (Linux: VmHWM, then reset through clear_refs). */
function peakRss(): number {
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]);
  writeFileSync("/proc/self/clear_refs", "5");
  return kb * 1024;
}

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GB`;
const rate = (n: number, seconds: number, unit: string) => `${n / seconds >= 1e6 ? `${(n / seconds / 1e6).toFixed(1)}M` : `${(n / seconds / 1e3).toFixed(0)}k`} ${unit}/s`;

async function main(): Promise<void> {
  const dir = options.data ? path.resolve(options.data) : await syntheticDir(options.synthetic as Preset, 42, console.log);
  console.log(`benchmark on ${options.data ?? `synthetic:${options.synthetic}`} (${dir}), ${options.threads} threads, ${defaultThreads()} cores\n`);
  const stages: { name: string; seconds: number; peak: number }[] = [];
  peakRss();
  const run = runOf({
    threads: options.threads,
    onProgress: progressReporter(),
    onStage: (name, ms) => stages.push({ name, seconds: ms / 1000, peak: peakRss() }),
  });
  const t0 = performance.now();
  const params = resolveParams({});
  const data = await prepare(dir, params, run);
  const neighbours = await fitNeighbours(data.X_movies, params, run);
  const { metrics, baseline } = await evaluateTest(data, neighbours, params, run);
  const served = await refit(data, params, run);
  const out = await mkdtemp(path.join(tmpdir(), "bench-model-"));
  const model = assemble(data, served, params, { evaluated: neighbours, metrics, baseline, timings: run.timings, source: dir });
  await run.stage("save", () => saveModel(path.join(out, "model"), model), () => "");
  const total = (performance.now() - t0) / 1000;
  await rm(out, { recursive: true, force: true });

  const ratings = data.counts.ratings, bytes = data.files[0].bytes;
  console.log(`\n${"stage".padEnd(17)}${"wall s".padStart(9)}  ${"throughput".padEnd(22)}${"peak RSS".padStart(10)}`);
  for (const s of stages) {
    const throughput = s.name === "ingest" ? `${(bytes / 1e6 / s.seconds).toFixed(0)} MB/s` : rate(ratings, s.seconds, "ratings");
    console.log(`${s.name.padEnd(17)}${s.seconds.toFixed(2).padStart(9)}  ${throughput.padEnd(22)}${gb(s.peak).padStart(10)}`);
  }
  console.log(`${"total".padEnd(17)}${total.toFixed(2).padStart(9)}  ${rate(ratings, total, "ratings").padEnd(22)}${gb(Math.max(process.resourceUsage().maxRSS * 1024, ...stages.map((s) => s.peak))).padStart(10)}`);
  console.log(`\n${ratings.toLocaleString("en-US")} ratings, ${data.enc.userIds.length.toLocaleString("en-US")} users, ${data.enc.movieIds.length.toLocaleString("en-US")} movies; precision@10 ${metrics.precision.toFixed(4)} (popularity ${baseline.precision.toFixed(4)})`);

  const nMovies = data.X_movies.nRows;
  const how = options.reference === "auto" ? (nMovies <= 20_000 ? "all" : "sample") : options.reference;
  if (how === "none") return;
  const step = how === "all" ? 1 : 20;
  const movies = Array.from({ length: Math.ceil(nMovies / step) }, (_, i) => i * step);
  // each fit beside the plain fit of the same likes: the evaluation's (train likes), the refit's (all likes)
  const fits: [string, Csr, Neighbours][] = [["neighbours", data.X_movies, neighbours], ["refit neighbours", served.X_movies, served.neighbours]];
  let same = true;
  console.log(`\nplain single-threaded neighbours${step > 1 ? ` (every ${step}th movie, times ${step})` : ""}:`);
  for (const [stage, X_movies, fitted] of fits) {
    const r0 = performance.now();
    const plain = plainNeighbours(X_movies, params.k, movies);
    const seconds = ((performance.now() - r0) / 1000) * step;
    const equal = movies.every((m) => {
      const a = neighboursOf(plain, m), b = neighboursOf(fitted, m);
      return a.indices.length === b.indices.length && a.indices.every((j, i) => j === b.indices[i] && a.sims[i] === b.sims[i]);
    });
    const fast = stages.find((s) => s.name === stage)!.seconds;
    console.log(`${stage.padEnd(17)}${fast.toFixed(2).padStart(9)} s, plain ${seconds.toFixed(1)} s: ${(fast / seconds).toFixed(2)}x the plain time ` +
      `(speed-up ${(seconds / fast).toFixed(1)}x); same neighbours: ${equal ? "yes" : "NO"}`);
    same &&= equal;
  }
  if (!same) process.exitCode = 1;
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
