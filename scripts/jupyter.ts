import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";

/** The project's root (this file runs from dist/scripts/). */
export const ROOT = path.resolve(__dirname, "..", "..");
const NOTEBOOKS = path.join(ROOT, "notebooks");
/** The project's own Jupyter data folder: the tslab kernel is registered here, not in the user's Jupyter. */
export const JUPYTER_DIR = path.join(ROOT, ".cache", "jupyter");
const TSLAB = path.join(ROOT, "node_modules", "tslab", "bin", "tslab");
const INSTALL = "Debian or Ubuntu: sudo apt-get install jupyter-nbconvert python3-nbclient jupyter-client jupyter-notebook;"
  + " elsewhere: pip install nbconvert nbclient jupyter_client notebook";

/** The notebooks in notebooks/, in order. */
export function notebookFiles(): string[] {
  return readdirSync(NOTEBOOKS).filter((f) => f.endsWith(".ipynb")).sort().map((f) => path.join(NOTEBOOKS, f));
}

/**
 * `env` with Jupyter's folders set to the project's .cache/jupyter, so that Jupyter finds the project's tslab kernel
 * first and reads and writes nothing of the user's own set-up (kernels, config, runtime files, IPython's folder).
 */
export function jupyterEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    ...env, JUPYTER_PATH: JUPYTER_DIR, JUPYTER_DATA_DIR: JUPYTER_DIR,
    JUPYTER_CONFIG_DIR: path.join(JUPYTER_DIR, "config"), JUPYTER_RUNTIME_DIR: path.join(JUPYTER_DIR, "runtime"),
    IPYTHONDIR: path.join(JUPYTER_DIR, "ipython"),
  };
}

/** The `jupyter` command on PATH, or undefined. */
export function jupyterCommand(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return (env.PATH ?? "").split(path.delimiter).filter((d) => d !== "").map((d) => path.join(d, "jupyter")).find((f) => existsSync(f));
}

/**
 * Registers the tslab kernel (this project's node_modules/tslab, run by this Node) in the project's Jupyter data
 * folder, written atomically; no `tslab install` needed.
 */
export async function registerKernel(): Promise<void> {
  if (!existsSync(TSLAB)) throw new Error(`${path.relative(ROOT, TSLAB)} not found: run npm ci first`);
  const dir = path.join(JUPYTER_DIR, "kernels", "tslab");
  await mkdir(dir, { recursive: true });
  const spec = { argv: [process.execPath, TSLAB, "kernel", "--config-path", "{connection_file}"], display_name: "TypeScript", language: "typescript" };
  const tmp = path.join(dir, `kernel.json.tmp${process.pid}`);
  await writeFile(tmp, `${JSON.stringify(spec, null, 1)}\n`);
  await rename(tmp, path.join(dir, "kernel.json"));
}

/**
 * What running notebooks needs from the machine (Jupyter with the given subcommands, e.g. nbconvert or notebook),
 * or a message saying what is missing and which packages to install.
 */
export async function missingJupyter(subcommands = ["nbconvert"]): Promise<string | undefined> {
  const jupyter = jupyterCommand();
  if (!jupyter) return `no jupyter command on PATH. Install Jupyter: ${INSTALL}`;
  for (const sub of subcommands) {
    const { code } = await run(jupyter, [sub, "--version"], jupyterEnv(process.env));
    if (code !== 0) return `\`jupyter ${sub}\` does not run (exit code ${code}). Install Jupyter: ${INSTALL}`;
  }
  return undefined;
}

/** What became of one notebook: its name, how long it took, and its errors (none when it ran cleanly). */
export interface Executed { name: string; seconds: number; problems: string[] }

/**
 * Executes each notebook top to bottom in a fresh kernel of the project's tslab (nbconvert, errors allowed so that
 * every cell runs; execution counts from the kernel's replies), `parallel` at a time, writing the executed copies to
 * `outputDir` and calling `done` as each finishes. The kernel's working directory is notebooks/, so relative paths
 * in a notebook are relative to it.
 */
export async function executeNotebooks(files: string[], outputDir: string, env: NodeJS.ProcessEnv,
  done: (e: Executed) => void = () => undefined, parallel = 2): Promise<Executed[]> {
  const jupyter = jupyterCommand();
  if (!jupyter) throw new Error(`no jupyter command on PATH. Install Jupyter: ${INSTALL}`);
  await registerKernel();
  const results: Executed[] = [];
  const queue = [...files];
  const worker = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      const name = path.basename(file), t0 = performance.now();
      const { code, stderr } = await run(jupyter, [
        "nbconvert", "--to", "notebook", "--execute", "--allow-errors", "--output-dir", outputDir,
        "--config", path.join(ROOT, "scripts", "nbconvert-config.py"),
        "--ExecutePreprocessor.timeout=900", "--ExecutePreprocessor.record_timing=False", file,
      ], jupyterEnv(env));
      const problems = code !== 0 ? [`${name}: nbconvert exited with ${code}:\n${stderr.trim()}`] : notebookProblems(path.join(outputDir, name));
      const result = { name, seconds: (performance.now() - t0) / 1000, problems };
      results.push(result);
      done(result);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, files.length) }, worker));
  return results;
}

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  ename?: string;
  evalue?: string;
  data?: Record<string, string | string[]>;
}
export interface Cell {
  cell_type: string;
  source: string | string[];
  execution_count?: number | null;
  outputs?: Output[];
}

const text = (t: string | string[] | undefined) => (Array.isArray(t) ? t.join("") : t ?? "");

/** The cells of an executed notebook file. */
export function cellsOf(file: string): Cell[] {
  return (JSON.parse(readFileSync(file, "utf8")) as { cells: Cell[] }).cells;
}

/**
 * Every error in an executed notebook, naming the notebook and the cell: error outputs and stderr. (A kernel that
 * dies stops nbconvert, which executeNotebooks reports.)
 */
export function notebookProblems(file: string): string[] {
  const problems: string[] = [];
  cellsOf(file).forEach((cell, i) => {
    if (cell.cell_type !== "code") return;
    const where = `${path.basename(file)}, cell ${i + 1} (${text(cell.source).split("\n")[0].slice(0, 70)})`;
    if (text(cell.source).trim() !== "" && cell.execution_count == null) problems.push(`${where}: not executed`);
    for (const o of cell.outputs ?? []) {
      if (o.output_type === "error") problems.push(`${where}: ${o.ename}: ${o.evalue}`);
      // tslab reports compile and runtime errors on stderr
      if (o.output_type === "stream" && o.name === "stderr") problems.push(`${where}: ${text(o.text).trim()}`);
    }
  });
  return problems;
}

/** The text/html outputs of an executed notebook, in order. */
export function htmlOutputs(file: string): string[] {
  return cellsOf(file).flatMap((c) => (c.outputs ?? []).map((o) => text(o.data?.["text/html"])).filter((h) => h !== ""));
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
