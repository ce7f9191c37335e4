// npm run bench:als: implicit ALS on X_train of a synthetic preset (default 32m) or --data, with the wall
// and CPU time of each iteration (CPU: all threads of the process, steadier than wall on a shared machine)
// and the peak RSS.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Command, Option } from "commander";
import { integer, number } from "../lib/args";
import { fitAls } from "../lib/als";
import { DEFAULTS, resolveParams } from "../lib/params";
import { type Preset, PRESETS, syntheticDir } from "../lib/synthetic";
import { prepare, runOf } from "../lib/train";
import { defaultThreads } from "../lib/workers";

const options = new Command("bench:als")
  .description("Time implicit ALS (conjugate gradient, as implicit's least_squares_cg) on X_train.")
  .addOption(new Option("--data <dir>", "a MovieLens directory").conflicts("synthetic"))
  .addOption(new Option("--synthetic <preset>", "a synthetic set, generated once and cached").choices(Object.keys(PRESETS)).default("32m"))
  .option("--threads <n>", "worker threads", integer("--threads", 1), defaultThreads())
  .option("--factors <n>", "factors", integer("--factors", 1), DEFAULTS.factors)
  .option("--iterations <n>", "ALS iterations", integer("--iterations", 1), DEFAULTS.iterations)
  .option("--regularization <x>", "regularization", number("--regularization"), DEFAULTS.regularization)
  .option("--confidence <x>", "confidence", number("--confidence"), DEFAULTS.confidence)
  .parse()
  .opts();

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GB`;
const peakRss = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
const cpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

async function main(): Promise<void> {
  const dir = options.data ? path.resolve(options.data) : await syntheticDir(options.synthetic as Preset, 42, console.log);
  const data = await prepare(dir, resolveParams({}), runOf({ threads: options.threads }));
  const { X_train } = data;
  console.log(`X_train ${X_train.nRows.toLocaleString("en-US")} x ${X_train.nCols.toLocaleString("en-US")}, ${X_train.indices.length.toLocaleString("en-US")} likes; peak RSS after preparing ${gb(peakRss())}`);
  const { factors, regularization, confidence, iterations, threads } = options;
  console.log(`ALS factors=${factors} regularization=${regularization} confidence=${confidence} threads=${threads}`);
  const t0 = performance.now(), c0 = cpuSeconds();
  let wall = t0, cpu = c0, last = 0;
  await fitAls(X_train, {
    factors, regularization, confidence, iterations, seed: 42, threads,
    // told every half second on threads (within that of an iteration's end), at each iteration's end on one
    onProgress: (done) => {
      if (done === last) return;
      last = done;
      const w = performance.now(), c = cpuSeconds();
      console.log(`iteration ${String(done).padStart(3)}  wall ${((w - wall) / 1000).toFixed(1).padStart(6)} s  cpu ${(c - cpu).toFixed(1).padStart(6)} s  peak RSS ${gb(peakRss())}`);
      wall = w;
      cpu = c;
    },
  });
  const seconds = (performance.now() - t0) / 1000, cpuTotal = cpuSeconds() - c0;
  console.log(`total ${seconds.toFixed(1)} s wall (${(seconds / iterations).toFixed(1)} s per iteration), ${cpuTotal.toFixed(1)} s cpu (${(cpuTotal / iterations).toFixed(1)} s per iteration), peak RSS ${gb(peakRss())}`);
}
main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exitCode = 1; });
