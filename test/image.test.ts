import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { loadModel } from "../lib/model-io";
import { recommendForUser } from "../lib/recommend";

// Every command's module loads with cli.js, so a command that runs under the hook imports nothing the image lacks.
const cli = path.join(__dirname, "..", "lib", "cli.js");
const imageInstall = ["--require", path.join(__dirname, "image-install.js")];
const tmp = mkdtempSync(path.join(tmpdir(), "image-"));
const env = { ...process.env, MOVIELENS_CACHE: tmp };

async function node(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    return { code: 0, ...await promisify(execFile)(process.execPath, args, { env }) };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

test("the hook hides the notebook, test and Azure SDK packages, and only those", async () => {
  const probe = `for (const p of process.argv.slice(1)) { try { require(p); console.log(p, "found"); } catch (e) { console.log(p, e.code); } }`;
  const hidden = ["danfojs-node", "@tensorflow/tfjs", "tslab", "zeromq", "plotly.js-dist/package.json", "mathjs", "typescript", "yazl",
    "@azure/arm-machinelearning", "@azure/identity", "@azure/storage-blob"];
  const kept = ["commander", "fastify", "wabt", "yauzl", "csv-parse/sync", "cli-progress"];
  const { stdout } = await node(...imageInstall, "-e", probe, ...hidden, ...kept);
  assert.equal(stdout, [...hidden.map((p) => `${p} MODULE_NOT_FOUND`), ...kept.map((p) => `${p} found`)].join("\n") + "\n");
});

test("train, then the image's CMD (serve, 2 workers), run on the image's install alone", async () => {
  const modelDir = path.join(tmp, "model");
  const trained = await node(...imageInstall, cli, "train", "--synthetic", "small", "--sample-users", "300", "--threads", "2", "--model-dir", modelDir);
  assert.equal(trained.code, 0, trained.stderr);
  assert.match(trained.stdout, /^model written to /m);

  const model = await loadModel(modelDir);
  const user = model.users.userId[0];
  const server = spawn(process.execPath, [...imageInstall, cli, "serve", "--port", "0", "--workers", "2", "--quiet", "--model-dir", modelDir],
    { env, stdio: ["ignore", "pipe", "inherit"] });
  const exited = once(server, "close");
  try {
    let out = "";
    server.stdout!.on("data", (c) => (out += c));
    while ((out.match(/model loaded/g) ?? []).length < 2) await Promise.race([once(server.stdout!, "data"), exited]);
    const port = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1];
    const res = await fetch(`http://127.0.0.1:${port}/score`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId: user, n: 5 }) });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), JSON.parse(JSON.stringify(recommendForUser(model, user, 5))));
    server.kill("SIGTERM");
    assert.deepEqual(await exited, [0, null]);
  } finally {
    server.kill("SIGKILL");
  }
});

test("without the optional dependencies, a Blob location and the azure commands say what is missing, and --help still lists azure", async () => {
  const blob = await node(...imageInstall, cli, "train", "--data", "az://account/container/ml", "--model-dir", path.join(tmp, "unused"));
  assert.equal(blob.code, 1);
  assert.equal(blob.stderr, "error: Blob locations need @azure/storage-blob, an optional dependency that this install left out (npm install without --omit=optional adds it)\n");
  const azure = await node(...imageInstall, cli, "azure", "--help");
  assert.equal(azure.code, 1);
  assert.match(azure.stderr, /^error: the azure commands need @azure\/[a-z-]+, an optional dependency that this install left out .*\n$/);
  const help = await node(...imageInstall, cli, "--help");
  assert.match(help.stdout, /^ {2}azure +Train and deploy on Azure ML/m);
  const full = await node(cli, "help", "azure");
  assert.match(full.stdout, /^ {2}deploy \[options\]/m, "with the optional dependencies installed, the azure commands load");
});
