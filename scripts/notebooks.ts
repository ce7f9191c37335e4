import { readFileSync } from "node:fs";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { syntheticDir } from "../lib/synthetic";
import { type Executed, ROOT, executeNotebooks, missingJupyter, notebookFiles } from "./jupyter";

/**
 * `npm run notebooks`: executes every notebook in notebooks/ headless with the project's tslab kernel, reporting each
 * as it finishes, and, when none has an error, writes the executed copies back in place, outputs included.
 * MOVIELENS_DATA (a MovieLens directory) runs them on real data; unset, on the synthetic set. The kernels get it
 * relative to notebooks/, so that no machine path reaches the saved outputs.
 */
async function main(): Promise<void> {
  const missing = await missingJupyter();
  if (missing) throw new Error(missing);
  const env = { ...process.env };
  if (env.MOVIELENS_DATA) env.MOVIELENS_DATA = path.relative(path.join(ROOT, "notebooks"), path.resolve(env.MOVIELENS_DATA));
  else await syntheticDir("small"); // generated once here, not by two kernels at once
  const files = notebookFiles();
  const out = await mkdtemp(path.join(os.tmpdir(), "notebooks-"));
  try {
    const before = files.map((f) => readFileSync(f, "utf8"));
    const t0 = performance.now();
    console.log(`executing ${files.length} notebooks, 2 at a time, on ${process.env.MOVIELENS_DATA ?? "the synthetic set"}`);
    const report = (e: Executed) => console.log(`${e.name.padEnd(24)} ${e.seconds.toFixed(0).padStart(4)} s  ${e.problems.length === 0 ? "ok" : "failed"}`);
    const results = await executeNotebooks(files, out, env, report);
    const problems = results.flatMap((e) => e.problems);
    if (problems.length > 0) throw new Error(`notebooks left unchanged; errors:\n${problems.join("\n")}`);
    // A notebook edited while this ran (in Jupyter, say) keeps the edit.
    const edited = files.filter((f, i) => readFileSync(f, "utf8") !== before[i]);
    for (const f of files) if (!edited.includes(f)) await copyFile(path.join(out, path.basename(f)), f);
    console.log(`wrote ${files.length - edited.length} executed notebooks in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    if (edited.length > 0) throw new Error(`changed while executing, left as they are: ${edited.map((f) => path.basename(f)).join(", ")}`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
