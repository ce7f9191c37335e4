import { spawn } from "node:child_process";
import path from "node:path";
import { JUPYTER_DIR, ROOT, jupyterCommand, missingJupyter, registerKernel } from "./jupyter";

/**
 * `npm run jupyter [-- lab] [-- jupyter options]`: Jupyter Notebook (or JupyterLab) on notebooks/, with the project's
 * tslab kernel registered in .cache/jupyter and found through JUPYTER_PATH, beside the user's own kernels.
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const app = args[0] === "lab" ? args.shift()! : "notebook";
  const missing = await missingJupyter([app]);
  if (missing) throw new Error(app === "lab" ? `${missing}; JupyterLab: pip install jupyterlab` : missing);
  await registerKernel();
  const jupyterPath = [JUPYTER_DIR, process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter);
  const child = spawn(jupyterCommand()!, [app, ...args, path.join(ROOT, "notebooks")], { stdio: "inherit", env: { ...process.env, JUPYTER_PATH: jupyterPath } });
  // Ctrl-C reaches Jupyter from the terminal (it asks before stopping); this process waits for it to finish.
  process.on("SIGINT", () => undefined);
  process.on("SIGTERM", () => child.kill("SIGTERM"));
  child.on("exit", (code, signal) => (process.exitCode = code ?? (signal ? 1 : 0)));
}

main().catch((e: Error) => {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
});
