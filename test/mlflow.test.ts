import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { logBatchOf, mlflowRunFromEnv, reportToMlflow } from "../lib/azure/mlflow";

const ROOT = path.resolve(__dirname, "..", "..");
const CLI = path.join(ROOT, "dist/lib/cli.js");
const SCOPE = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-test/providers/Microsoft.MachineLearningServices/workspaces/ws-test";
const RUN_ID = "movielens-train-0123abcd";
const TOKEN = "mlflow-run-token";

let tmp: string;
let cert: { key: Buffer; cert: Buffer; file: string };

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "mlflow-test-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", path.join(tmp, "key.pem"), "-out", path.join(tmp, "cert.pem")], { stdio: "ignore" });
  cert = { key: await readFile(path.join(tmp, "key.pem")), cert: await readFile(path.join(tmp, "cert.pem")), file: path.join(tmp, "cert.pem") };
});

after(() => rm(tmp, { recursive: true, force: true }));

interface Received { method: string; path: string; authorization?: string; contentType?: string; body: any }

/**
 * A local server answering like Azure ML's MLflow endpoint (https://<host>/mlflow/v1.0/<workspace scope>/api/2.0/mlflow/...):
 * runs/log-batch for one run, checked as the MLflow REST API checks it (a bearer token, run_id, at most 100 params and
 * 1000 metrics, keys of letters, digits, _ - . space /, string param values, numeric metric values with timestamp and step),
 * with MLflow's error body for what it refuses; `status` forces an answer.
 */
async function fakeMlflow({ tls = true, status }: { tls?: boolean; status?: number } = {}) {
  const received: Received[] = [];
  const handler = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    let body: any;
    try { body = JSON.parse(text); } catch { body = text; }
    received.push({ method: req.method!, path: req.url!, authorization: req.headers.authorization, contentType: req.headers["content-type"], body });
    const answer = (code: number, json: unknown) => res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(json));
    const invalid = (message: string) => answer(400, { error_code: "INVALID_PARAMETER_VALUE", message });
    if (status) return answer(status, { error_code: "INTERNAL_ERROR", message: "forced" });
    if (req.method !== "POST" || req.url !== `${tls ? `/mlflow/v1.0${SCOPE}` : ""}/api/2.0/mlflow/runs/log-batch`) return answer(404, { error_code: "ENDPOINT_NOT_FOUND", message: `${req.method} ${req.url}` });
    if (tls && req.headers.authorization !== `Bearer ${TOKEN}`) return answer(401, { error_code: "UNAUTHENTICATED", message: "no or wrong token" });
    if (!/^application\/json/.test(req.headers["content-type"] ?? "")) return invalid("expected a JSON body");
    if (body.run_id !== RUN_ID) return answer(404, { error_code: "RESOURCE_DOES_NOT_EXIST", message: `run ${body.run_id}` });
    const keyOk = (k: unknown) => typeof k === "string" && /^[\w\-. /]{1,250}$/.test(k);
    if (!Array.isArray(body.params) || body.params.length > 100) return invalid("params: expected at most 100");
    if (!Array.isArray(body.metrics) || body.metrics.length > 1000) return invalid("metrics: expected at most 1000");
    if (new Set(body.params.map((p: any) => p.key)).size !== body.params.length) return invalid("duplicate param keys");
    for (const p of body.params) if (!keyOk(p.key) || typeof p.value !== "string" || p.value.length > 6000) return invalid(`param ${JSON.stringify(p)}`);
    for (const m of body.metrics) {
      if (!keyOk(m.key) || typeof m.value !== "number" || !Number.isInteger(m.timestamp) || !Number.isInteger(m.step)) return invalid(`metric ${JSON.stringify(m)}`);
    }
    for (const t of body.tags ?? []) if (!keyOk(t.key) || typeof t.value !== "string") return invalid(`tag ${JSON.stringify(t)}`);
    return answer(200, {});
  };
  const server = tls ? https.createServer({ key: cert.key, cert: cert.cert }, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return { received, port, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** The environment an Azure ML command job gets, pointed at the local server. */
const jobEnv = (port: number): NodeJS.ProcessEnv => ({
  ...process.env,
  NODE_EXTRA_CA_CERTS: cert.file,
  MLFLOW_TRACKING_URI: `azureml://127.0.0.1:${port}/mlflow/v1.0${SCOPE}`,
  MLFLOW_RUN_ID: RUN_ID,
  MLFLOW_TRACKING_TOKEN: TOKEN,
  MLFLOW_EXPERIMENT_ID: "e1",
});

function train(env: NodeJS.ProcessEnv, modelDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, "train", "--synthetic", "small", "--model-dir", modelDir, "--threads", "1"], { env, cwd: ROOT },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }));
  });
}

test("the tracking URI as azureml-mlflow reads it: azureml://<host>/<path> served at https://<host>/<path>, with the token and run id", () => {
  const env = { MLFLOW_TRACKING_URI: `azureml://westeurope.api.azureml.ms/mlflow/v1.0${SCOPE}`, MLFLOW_RUN_ID: RUN_ID, MLFLOW_TRACKING_TOKEN: TOKEN };
  assert.deepEqual(mlflowRunFromEnv(env), { baseUrl: `https://westeurope.api.azureml.ms/mlflow/v1.0${SCOPE}`, runId: RUN_ID, token: TOKEN });
  assert.deepEqual(mlflowRunFromEnv({ ...env, MLFLOW_TRACKING_URI: "http://127.0.0.1:5000/" }), { baseUrl: "http://127.0.0.1:5000", runId: RUN_ID, token: TOKEN });
  for (const missing of ["MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_TOKEN"] as const) {
    assert.equal(mlflowRunFromEnv({ ...env, [missing]: undefined }), undefined, missing);
  }
  assert.throws(() => mlflowRunFromEnv({ ...env, MLFLOW_TRACKING_URI: "azureml://westeurope.api.azureml.ms/mlflow/v1.0/nothing" }), /MLFLOW_TRACKING_URI must be azureml:\/\/<host>\/mlflow\/v1\.0\/subscriptions\//);
});

test("train in a job logs its parameters, metrics, the baseline's and the stage times to the job's MLflow run", async (t) => {
  const server = await fakeMlflow();
  t.after(server.close);
  const modelDir = path.join(tmp, "model");
  const run = await train(jobEnv(server.port), modelDir);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stderr, "");
  assert.match(run.stdout, new RegExp(`metrics logged to MLflow run ${RUN_ID}\\n$`));
  assert.equal(server.received.length, 1);
  const [request] = server.received;
  assert.equal(request.method, "POST");
  assert.equal(request.path, `/mlflow/v1.0${SCOPE}/api/2.0/mlflow/runs/log-batch`);
  assert.equal(request.authorization, `Bearer ${TOKEN}`);

  const manifest = JSON.parse(await readFile(path.join(modelDir, "model.json"), "utf8"));
  const metrics = Object.fromEntries(request.body.metrics.map((m: { key: string; value: number }) => [m.key, m.value]));
  for (const name of ["precision", "recall", "hitrate", "ndcg", "coverage"]) {
    assert.equal(metrics[name], manifest.metrics[name], name);
    assert.equal(metrics[`baseline_${name}`], manifest.baseline[name], `baseline_${name}`);
  }
  for (const [stage, ms] of Object.entries<number>(manifest.timings)) assert.equal(metrics[`time_${stage}_s`], ms / 1000, stage);
  const params = Object.fromEntries(request.body.params.map((p: { key: string; value: string }) => [p.key, p.value]));
  assert.deepEqual(params, { ...Object.fromEntries(Object.entries(manifest.params).map(([k, v]) => [k, String(v)])), source: "synthetic:small", fit: manifest.fit });
});

test("a failing or unreachable MLflow server costs one warning, never the training", async (t) => {
  const failing = await fakeMlflow({ status: 503 });
  t.after(failing.close);
  const broken = await train(jobEnv(failing.port), path.join(tmp, "model-503"));
  assert.equal(broken.code, 0, broken.stderr);
  assert.match(broken.stderr, /^warning: metrics not logged to MLflow: POST https:\/\/127\.0\.0\.1:\d+\/mlflow\/v1\.0\/subscriptions\/.*\/api\/2\.0\/mlflow\/runs\/log-batch answered 503: .*\n$/);
  assert.match(broken.stdout, /model written to /);
  assert.equal(failing.received.length, 1);

  const closed = await fakeMlflow();
  await closed.close();
  const warnings: string[] = [];
  await reportToMlflow(logged(), jobEnv(closed.port), (line) => warnings.push(line));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /^warning: metrics not logged to MLflow: fetch failed \(.*ECONNREFUSED.*\)$/);
});

test("outside a job (no MLflow environment) nothing is sent; a plain MLflow server over http works without a token", async (t) => {
  const server = await fakeMlflow({ tls: false });
  t.after(server.close);
  const warnings: string[] = [];
  await reportToMlflow(logged(), { MLFLOW_TRACKING_URI: `azureml://127.0.0.1:${server.port}/mlflow/v1.0${SCOPE}`, MLFLOW_RUN_ID: RUN_ID }, (l) => warnings.push(l));
  await reportToMlflow(logged(), {}, (l) => warnings.push(l));
  assert.equal(server.received.length, 0);
  await reportToMlflow(logged(), { MLFLOW_TRACKING_URI: `http://127.0.0.1:${server.port}`, MLFLOW_RUN_ID: RUN_ID }, (l) => warnings.push(l));
  assert.deepEqual(warnings, []);
  assert.equal(server.received.length, 1);
  assert.equal(server.received[0].authorization, undefined);
  const { body } = server.received[0];
  assert.deepEqual(body, logBatchOf(logged(), RUN_ID, body.metrics[0].timestamp));
  assert.deepEqual(body.metrics.map((m: { key: string; value: number }) => [m.key, m.value]), [["precision", 0.25], ["baseline_precision", 0.5], ["time_ingest_s", 1.5]]);
  assert.deepEqual(body.params, [{ key: "seed", value: "42" }, { key: "k", value: "100" }, { key: "source", value: "synthetic:small" }]);
});

/** A manifest's logged part, with a metric that JSON cannot carry (dropped) and an unset parameter (dropped). */
function logged() {
  return {
    params: { seed: 42, k: 100, sampleUsers: undefined } as never,
    input: { source: "synthetic:small", files: [] },
    metrics: { precision: 0.25, coverage: Number.NaN },
    baseline: { precision: 0.5 },
    timings: { ingest: 1500 },
  };
}
