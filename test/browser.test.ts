import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, rm, symlink } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { syntheticDir } from "../lib/synthetic";
import { openChromium } from "../scripts/chromium";
import { JUPYTER_DIR, ROOT, jupyterCommand, jupyterEnv, missingJupyter, registerKernel } from "../scripts/jupyter";

// Jupyter Notebook as a user runs it (README, "Notebooks"): the server on 127.0.0.1 with the project's tslab kernel,
// a notebook opened in Chromium, every cell run from the Cell menu. The notebook is a copy, so the run's autosave
// never touches notebooks/.
const NOTEBOOK = "02-genres.ipynb";
const WORK = path.join(JUPYTER_DIR, "browser-test");
const TOKEN = randomBytes(16).toString("hex");
let server: ChildProcess | undefined;
let log = "";
let url = "";

const freePort = () => new Promise<number>((resolve, reject) => {
  const s = createServer().once("error", reject).listen(0, "127.0.0.1", () => {
    const { port } = s.address() as { port: number };
    s.close(() => resolve(port));
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

before(async () => {
  const missing = await missingJupyter(["notebook"]);
  if (missing) throw new Error(`the browser test needs Jupyter Notebook: ${missing}`);
  await registerKernel();
  await rm(WORK, { recursive: true, force: true });
  await mkdir(WORK, { recursive: true });
  await copyFile(path.join(ROOT, "notebooks", NOTEBOOK), path.join(WORK, NOTEBOOK));
  await symlink(path.join("..", "..", "..", "lib"), path.join(WORK, "lib")); // as notebooks/lib links to ../lib
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  server = spawn(jupyterCommand()!, [
    "notebook", "--no-browser", "--ip=127.0.0.1", `--port=${port}`, "--NotebookApp.port_retries=0",
    `--NotebookApp.token=${TOKEN}`, `--notebook-dir=${WORK}`, ...(process.getuid?.() === 0 ? ["--allow-root"] : []), // CI runs as root
  ], { env: jupyterEnv({ ...process.env, MOVIELENS_DATA: await syntheticDir("small") }), stdio: ["ignore", "pipe", "pipe"], detached: true });
  server.stdout!.on("data", (d) => (log += d));
  server.stderr!.on("data", (d) => (log += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`jupyter notebook exited with ${server.exitCode}:\n${log}`);
    const status = await fetch(`${url}/api/status?token=${TOKEN}`).then((r) => r.status, () => 0);
    if (status === 200) break;
    if (Date.now() > deadline) throw new Error(`jupyter notebook did not answer on ${url} within 60 s:\n${log}`);
    await sleep(500);
  }
}, { timeout: 90_000 });

after(async () => {
  if (server?.pid !== undefined && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once("exit", resolve));
    process.kill(-server.pid, "SIGTERM"); // the server and its kernels: their own process group
    await Promise.race([exited, sleep(10_000)]);
    if (server.exitCode === null && server.signalCode === null) process.kill(-server.pid, "SIGKILL");
  }
  await rm(WORK, { recursive: true, force: true });
});

test(`Jupyter Notebook in Chromium runs ${NOTEBOOK} from the Cell menu: tables and a plotly figure, no error`, { timeout: 6 * 60_000 }, async () => {
  const chromium = await openChromium({ origin: url });
  try {
    const page = await chromium.context.newPage();
    await page.goto(`${url}/notebooks/${NOTEBOOK}?token=${TOKEN}`);
    // In-page code as strings: the project compiles without the DOM library.
    await page.waitForFunction(`window.Jupyter?.notebook?.kernel?.is_connected()`, undefined, { timeout: 60_000 });
    await page.click("#celllink");
    await page.click("#run_all_cells > a");
    const done = `(() => {
      const prompts = [...document.querySelectorAll(".code_cell .input_prompt")].map((p) => p.textContent.replace(/\\s/g, ""));
      return prompts.length > 0 && prompts.every((p) => /^In\\[\\d+\\]:$/.test(p))
        && document.querySelector("#kernel_indicator_icon").classList.contains("kernel_idle_icon");
    })()`;
    await page.waitForFunction(done, undefined, { timeout: 5 * 60_000, polling: 1000 });
    // plotly.js unpacks itself asynchronously, then draws: give the figures a bounded while (a miss fails below).
    await page.waitForFunction(`[...document.querySelectorAll(".plotly-figure")].every((f) => f.querySelector("svg.main-svg"))`,
      undefined, { timeout: 60_000 }).catch(() => undefined);
    const seen = await page.evaluate<{ cells: number; tables: number; figures: number; svgs: number; errors: string[]; prompts: string[] }>(`({
      cells: document.querySelectorAll(".code_cell").length,
      tables: document.querySelectorAll(".output_area table.dataframe tbody tr").length,
      figures: document.querySelectorAll(".output_area .plotly-figure").length,
      svgs: document.querySelectorAll(".output_area .plotly-figure svg.main-svg").length,
      errors: [...document.querySelectorAll(".output_error, .output_stderr")].map((e) => e.textContent.slice(0, 300)),
      prompts: [...document.querySelectorAll(".code_cell .input_prompt")].map((p) => p.textContent.replace(/\\s/g, "")),
    })`);
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(seen.prompts, Array.from({ length: seen.cells }, (_, i) => `In[${i + 1}]:`), "every cell ran once, in order");
    assert.ok(seen.tables > 0, "no table rendered");
    assert.ok(seen.figures > 0, "no plotly figure in the outputs");
    assert.ok(seen.svgs >= seen.figures, `${seen.svgs} of ${seen.figures} plotly figures drawn (an SVG in the page)`);
  } finally {
    await chromium.close();
  }
});
