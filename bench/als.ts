// node dist/bench/als.js: implicit ALS on X_train of a synthetic preset (default 32m) or --data, with
// wall time per iteration and peak RSS.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Command, Option } from "commander";
import { integer, number } from "../lib/args";
import { fitAls } from "../lib/als";
import { resolveParams } from "../lib/params";
import { type Preset, PRESETS, syntheticDir } from "../lib/synthetic";
import { prepare, runOf } from "../lib/train";
import { defaultThreads } from "../lib/workers";

const options = new Command("bench:als")
  .description("Time implicit ALS (conjugate gradient, as implicit's least_squares_cg) on X_train.")
  .addOption(new Option("--data <dir>", "a MovieLens directory").conflicts("synthetic"))
  .addOption(new Option("--synthetic <preset>", "a synthetic set, generated once and cached").choices(Object.keys(PRESETS)).default("32m"))
  .option("--threads <n>", "worker threads", integer("--threads", 1), defaultThreads())
  .option("--factors <n>", "factors", integer("--factors", 1), 64)
  .option("--iterations <n>", "ALS iterations", integer("--iterations", 1), 15)
  .option("--regularization <x>", "regularization", number("--regularization"), 30)
  .option("--confidence <x>", "confidence", number("--confidence"), 3)
  .parse()
  .opts();

const peakRss = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;

async function main(): Promise<void> {
  const dir = options.data ? path.resolve(options.data) : await syntheticDir(options.synthetic as Preset, 42, console.log);
  const data = await prepare(dir, resolveParams({}), runOf({ threads: options.threads }));
  const { X_train } = data;
  console.log(`X_train ${X_train.nRows.toLocaleString("en-US")} x ${X_train.nCols.toLocaleString("en-US")}, ${X_train.indices.length.toLocaleString("en-US")} likes; peak RSS after preparing ${(peakRss() / 2 ** 30).toFixed(2)} GB`);
  const t0 = performance.now();
  await fitAls(X_train, { factors: options.factors, regularization: options.regularization, confidence: options.confidence, iterations: options.iterations, seed: 42, threads: options.threads });
  const seconds = (performance.now() - t0) / 1000;
  console.log(`ALS factors=${options.factors} iterations=${options.iterations} threads=${options.threads}: ${seconds.toFixed(1)} s (${(seconds / options.iterations).toFixed(1)} s per iteration), peak RSS ${(peakRss() / 2 ** 30).toFixed(2)} GB`);
}
main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exitCode = 1; });
