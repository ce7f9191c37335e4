import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";

/** The project's root (this file runs from dist/scripts/). */
export const ROOT = path.resolve(__dirname, "..", "..");
const NOTEBOOKS = path.join(ROOT, "notebooks");
const JUPYTER = "/usr/bin/jupyter";

/** The notebooks in notebooks/, in order. */
export function notebookFiles(): string[] {
  return readdirSync(NOTEBOOKS).filter((f) => f.endsWith(".ipynb")).sort().map((f) => path.join(NOTEBOOKS, f));
}

/** What a notebook run needs from the machine, or a message saying what is missing and how to get it. */
export async function missingJupyter(): Promise<string | undefined> {
  if (!existsSync(JUPYTER)) return `${JUPYTER} not found: apt-get install jupyter-nbconvert python3-nbclient jupyter-client python3-ipykernel`;
  const { stdout } = await run(JUPYTER, ["kernelspec", "list", "--json"], process.env);
  if (!(JSON.parse(stdout) as { kernelspecs: Record<string, unknown> }).kernelspecs.tslab) {
    return "no tslab kernel registered with Jupyter: npx tslab install --python=/usr/bin/python3";
  }
  return undefined;
}

/**
 * Executes each notebook top to bottom in a fresh tslab kernel (nbconvert, errors allowed so that every cell
 * runs), `parallel` at a time, writing the executed copies to `outputDir`. The kernel's working directory is
 * notebooks/, so relative paths in a notebook are relative to it; tslab is found in node_modules/.bin.
 */
export async function executeNotebooks(files: string[], outputDir: string, env: NodeJS.ProcessEnv, parallel = 2): Promise<void> {
  const kernelEnv = { ...env, PATH: `${path.join(ROOT, "node_modules", ".bin")}${path.delimiter}${env.PATH ?? ""}` };
  const queue = [...files];
  const worker = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      const { code, stderr } = await run(JUPYTER, [
        "nbconvert", "--to", "notebook", "--execute", "--allow-errors", "--output-dir", outputDir,
        "--ExecutePreprocessor.timeout=900", "--ExecutePreprocessor.record_timing=False", file,
      ], kernelEnv);
      if (code !== 0) throw new Error(`${path.basename(file)}: nbconvert exited with ${code}:\n${stderr}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, files.length) }, worker));
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
  outputs?: Output[];
}

const text = (t: string | string[] | undefined) => (Array.isArray(t) ? t.join("") : t ?? "");

/** The cells of an executed notebook file. */
export function cellsOf(file: string): Cell[] {
  return (JSON.parse(readFileSync(file, "utf8")) as { cells: Cell[] }).cells;
}

/**
 * Every error in an executed notebook, naming the notebook and the cell: error outputs and stderr. (A kernel that
 * dies stops nbconvert, which executeNotebooks reports; tslab leaves execution_count empty, so it tells nothing.)
 */
export function notebookProblems(file: string): string[] {
  const problems: string[] = [];
  cellsOf(file).forEach((cell, i) => {
    if (cell.cell_type !== "code") return;
    const where = `${path.basename(file)}, cell ${i + 1} (${text(cell.source).split("\n")[0].slice(0, 70)})`;
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
