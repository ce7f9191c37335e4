import { execFile, execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import { API_VERSION, formatRequest } from "../lib/azure/client";
import { CONTAINER, INSTANCE_TYPE, TRAIN_COMMAND, checkEndpointName } from "../lib/azure/steps";
import { loadModel, saveModel } from "../lib/model-io";
import { recommendForUser } from "../lib/recommend";
import { buildApp } from "../lib/serve";
import { train } from "../lib/train";
import { writeSynthetic } from "../lib/synthetic";

const ROOT = path.resolve(__dirname, "..", "..");
const CLI = path.join(ROOT, "dist/lib/cli.js");
const SUB = "11111111-2222-3333-4444-555555555555";
const W = `/subscriptions/${SUB}/resourceGroups/rg-test/providers/Microsoft.MachineLearningServices/workspaces/ws-test`;
const TOKEN = "arm-test-token";
const KEY = "primary-endpoint-key";

interface Recorded { method: string; path: string; apiVersion: string | null; authorization?: string; body?: any }
/** An ARM answer to give instead of the usual: a synchronous error, or a long-running operation that fails. */
interface Fault { status?: number; code: string; message: string; async?: boolean }

let tmp: string;
let cert: { key: Buffer; cert: Buffer; file: string };
let scoring: FastifyInstance;
let model: Awaited<ReturnType<typeof loadModel>>;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "azure-test-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", path.join(tmp, "key.pem"), "-out", path.join(tmp, "cert.pem")], { stdio: "ignore" });
  cert = { key: await readFile(path.join(tmp, "key.pem")), cert: await readFile(path.join(tmp, "cert.pem")), file: path.join(tmp, "cert.pem") };
  await writeSynthetic(path.join(tmp, "data"), "small", 3);
  await saveModel(path.join(tmp, "model"), await train(path.join(tmp, "data")));
  model = await loadModel(path.join(tmp, "model"));
  scoring = buildApp(() => model, { logger: false, logRequests: false });
});

after(async () => {
  await scoring?.close();
  await rm(tmp, { recursive: true, force: true });
});

/**
 * A local HTTPS server answering like ARM for one workspace: stores what is PUT, answers 404 for what is not there,
 * runs endpoint and deployment PUTs as long-running operations (Azure-AsyncOperation, InProgress once, then Succeeded),
 * moves a job Queued -> Running -> Completed over successive GETs, and serves /score from the real scoring app.
 */
async function fakeArm(faults: Record<string, Fault> = {}, jobEnd = "Completed") {
  const requests: Recorded[] = [];
  const resources = new Map<string, any>();
  const operations = new Map<string, { polls: number; resource: string; fault?: Fault }>();
  const jobPolls = new Map<string, number>();
  const server: https.Server = https.createServer({ key: cert.key, cert: cert.cert }, async (req, res) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    const url = new URL(req.url!, "https://127.0.0.1");
    const body = text ? JSON.parse(text) : undefined;
    requests.push({ method: req.method!, path: url.pathname, apiVersion: url.searchParams.get("api-version"), authorization: req.headers.authorization, body });
    const send = (status: number, json: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(json));
    };
    const armError = (status: number, code: string, message: string) => send(status, { error: { code, message, details: [] } });
    const key = url.pathname.toLowerCase();
    const fault = faults[`${req.method} ${url.pathname.split("/").slice(-2).join("/")}`];

    if (url.pathname === CONTAINER.score) {
      if (req.headers.authorization !== `Bearer ${KEY}`) return armError(401, "Unauthorized", "bad key");
      const answer = await scoring.inject({ method: "POST", url: "/score", payload: body });
      return res.writeHead(answer.statusCode, { "content-type": "application/json" }).end(answer.body);
    }
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return armError(401, "AuthenticationFailed", "no or wrong bearer token");
    if (url.searchParams.get("api-version") !== API_VERSION) return armError(400, "InvalidApiVersionParameter", `api-version ${url.searchParams.get("api-version")}`);
    if (url.pathname.startsWith("/operations/")) {
      const op = operations.get(url.pathname)!;
      if (op.polls++ === 0) return send(200, { status: "InProgress" });
      if (op.fault) return send(200, { status: "Failed", error: { code: op.fault.code, message: op.fault.message } });
      resources.get(op.resource).properties.provisioningState = "Succeeded";
      return send(200, { status: "Succeeded" });
    }
    if (fault && !fault.async) return armError(fault.status!, fault.code, fault.message);
    if (req.method === "GET" && url.pathname === W) return send(200, { id: W, name: "ws-test", location: "westeurope" });
    if (req.method === "POST" && url.pathname.endsWith("/listKeys")) return send(200, { primaryKey: KEY, secondaryKey: "secondary" });
    if (req.method === "POST" && url.pathname.endsWith("/getLogs")) {
      const deployment = resources.get(key.replace(/\/getlogs$/, ""));
      return deployment ? send(200, { content: "Booting worker\nError: model.json not found" }) : armError(404, "UserError", "deployment not found");
    }
    if (req.method === "GET") {
      const found = resources.get(key);
      if (!found) return armError(404, "UserError", `Could not find ${url.pathname.split("/").slice(-2).join(" ")}`);
      if (/\/jobs\//.test(key)) {
        const polls = (jobPolls.get(key) ?? 0) + 1;
        jobPolls.set(key, polls);
        found.properties.status = ["Queued", "Running", jobEnd][Math.min(polls - 1, 2)];
      }
      return send(200, found);
    }
    if (req.method === "PUT") {
      const name = url.pathname.split("/").at(-1)!;
      const resource = { id: url.pathname, name, ...body, properties: { ...body.properties } };
      const existed = resources.has(key);
      resources.set(key, resource);
      if (/\/onlineendpoints\/[^/]+(\/deployments\/[^/]+)?$/.test(key)) {
        if (!/deployments/.test(key)) resource.properties.scoringUri = `https://127.0.0.1:${port}${CONTAINER.score}`;
        resource.properties.provisioningState = "Creating";
        const op = `/operations/${randomUUID()}`;
        operations.set(op, { polls: 0, resource: key, fault: fault?.async ? fault : undefined });
        return send(existed ? 200 : 201, resource, { "azure-asyncoperation": `https://127.0.0.1:${port}${op}?api-version=${API_VERSION}`, "retry-after": "0" });
      }
      if (/\/jobs\//.test(key)) resource.properties.services = { Studio: { endpoint: `https://ml.azure.com/runs/${name}` } };
      return send(existed ? 200 : 201, resource);
    }
    armError(405, "MethodNotAllowed", `${req.method} ${url.pathname}`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port: number = (server.address() as AddressInfo).port;
  return { server, requests, resources, port, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** The environment that points the CLI (or a notebook) at the fake ARM, trusting its certificate. */
const armEnv = (port: number): NodeJS.ProcessEnv => ({
  ...process.env,
  NODE_EXTRA_CA_CERTS: cert.file,
  AZURE_ARM_ENDPOINT: `https://127.0.0.1:${port}`,
  AZURE_ACCESS_TOKEN: TOKEN,
  AZURE_SUBSCRIPTION_ID: SUB,
  AZURE_RESOURCE_GROUP: "rg-test",
  AZUREML_WORKSPACE: "ws-test",
  AZUREML_IMAGE: "testacr.azurecr.io/movielens-recsys:0.1.0",
  AZUREML_DATA: "azureml://datastores/workspaceblobstore/paths/movielens/ml-latest-small",
});

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env }, (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }));
  });
}

const FAST = ["--poll-interval", "0.01"];
const arm = (r: Recorded[]) => r.filter((x) => x.path !== CONTAINER.score && !x.path.startsWith("/operations/"));
const line = (r: Recorded) => `${r.method} ${r.path.replace(W, "W")}`;

test("the whole flow from the CLI: every request's path, api-version, token and body; recommendations from the endpoint", async (t) => {
  const fake = await fakeArm();
  t.after(fake.close);
  const { code, stdout, stderr } = await cli(["azure", "deploy", ...FAST, "--user", String(model.users.userId[5]), "--n", "5"], armEnv(fake.port));
  assert.equal(code, 0, stderr);

  const job = /job (movielens-train-[0-9a-f]{8}): created/.exec(stdout)![1];
  const endpoint = /endpoint (movielens-[0-9a-f]{8}): created/.exec(stdout)![1];
  assert.deepEqual(arm(fake.requests).map(line).filter((l, i, all) => !(l.startsWith("GET W/jobs/") && all[i - 1] === l)), [
    "GET W/data/movielens/versions/1", "PUT W/data/movielens/versions/1",
    "GET W/environments/movielens-recsys/versions/1", "PUT W/environments/movielens-recsys/versions/1",
    `GET W/jobs/${job}`, `PUT W/jobs/${job}`, `GET W/jobs/${job}`,
    "GET W/models/movielens_recommender/versions/1", "PUT W/models/movielens_recommender/versions/1",
    `GET W/onlineEndpoints/${endpoint}`, "GET W", `PUT W/onlineEndpoints/${endpoint}`, `GET W/onlineEndpoints/${endpoint}`,
    `GET W/onlineEndpoints/${endpoint}/deployments/blue`, "GET W", `PUT W/onlineEndpoints/${endpoint}/deployments/blue`, `GET W/onlineEndpoints/${endpoint}/deployments/blue`,
    `GET W/onlineEndpoints/${endpoint}`, `PUT W/onlineEndpoints/${endpoint}`, `GET W/onlineEndpoints/${endpoint}`,
    `GET W/onlineEndpoints/${endpoint}`, `POST W/onlineEndpoints/${endpoint}/listKeys`,
  ]);
  for (const r of arm(fake.requests)) {
    assert.equal(r.apiVersion, API_VERSION, line(r));
    assert.equal(r.authorization, `Bearer ${TOKEN}`, line(r));
  }
  assert.equal(fake.requests.filter((r) => r.path.startsWith("/operations/")).length, 6, "three operations, each polled twice");
  assert.match(stdout, /job movielens-train-\w+: Queued after \d+ s\njob movielens-train-\w+: Running after \d+ s\njob movielens-train-\w+: Completed after \d+ s/);

  const put = (suffix: string) => fake.requests.find((r) => r.method === "PUT" && r.path === `${W}${suffix}`)!.body;
  assert.deepEqual(put("/data/movielens/versions/1"), { properties: {
    description: "MovieLens ratings.csv and movies.csv", dataType: "uri_folder",
    dataUri: `azureml://subscriptions/${SUB}/resourcegroups/rg-test/workspaces/ws-test/datastores/workspaceblobstore/paths/movielens/ml-latest-small/`,
  } });
  assert.deepEqual(put("/environments/movielens-recsys/versions/1").properties.inferenceConfig, {
    livenessRoute: { path: "/live", port: 5001 }, readinessRoute: { path: "/ready", port: 5001 }, scoringRoute: { path: "/score", port: 5001 },
  });
  assert.equal(put("/environments/movielens-recsys/versions/1").properties.image, "testacr.azurecr.io/movielens-recsys:0.1.0");
  const jobBody = put(`/jobs/${job}`).properties;
  assert.equal(jobBody.command, TRAIN_COMMAND);
  assert.deepEqual(jobBody.inputs, { data: { jobInputType: "uri_folder", uri: `azureml:${W}/data/movielens/versions/1`, mode: "ReadOnlyMount" } });
  assert.deepEqual(jobBody.outputs, { model: { jobOutputType: "custom_model", mode: "Upload" } });
  assert.equal(jobBody.environmentId, `${W}/environments/movielens-recsys/versions/1`);
  assert.equal(jobBody.computeId, `${W}/computes/cpu-cluster`);
  assert.deepEqual(put("/models/movielens_recommender/versions/1").properties, {
    description: "item-based cosine neighbours (movielens-recsys)", jobName: job, modelType: "custom_model", modelUri: `azureml://jobs/${job}/outputs/model/paths/`,
  });
  const endpointPuts = fake.requests.filter((r) => r.method === "PUT" && r.path === `${W}/onlineEndpoints/${endpoint}`).map((r) => r.body);
  assert.deepEqual(endpointPuts[0], { location: "westeurope", identity: { type: "SystemAssigned" }, properties: { authMode: "Key", description: "movielens-recsys recommendations" } });
  assert.deepEqual(endpointPuts[1], { ...endpointPuts[0], properties: { ...endpointPuts[0].properties, traffic: { blue: 100 } } });
  const deployment = put(`/onlineEndpoints/${endpoint}/deployments/blue`);
  assert.deepEqual(deployment.sku, { name: "Default", capacity: 1 });
  assert.equal(deployment.properties.instanceType, INSTANCE_TYPE);
  assert.equal(deployment.properties.model, `${W}/models/movielens_recommender/versions/1`);
  assert.equal(deployment.properties.endpointComputeType, "Managed");

  const score = fake.requests.find((r) => r.path === CONTAINER.score)!;
  assert.deepEqual(score.body, { userId: model.users.userId[5], n: 5 });
  const expected = recommendForUser(model, model.users.userId[5], 5).recommendations;
  assert.deepEqual([...stdout.matchAll(/^ +\d+\. +(\d+) /gm)].map((m) => Number(m[1])), expected.map((r) => r.movieId));
});

test("a second run finds every resource and sends no write", async (t) => {
  const fake = await fakeArm();
  t.after(fake.close);
  const first = await cli(["azure", "deploy", ...FAST], armEnv(fake.port));
  assert.equal(first.code, 0, first.stderr);
  fake.requests.length = 0;
  const { code, stdout, stderr } = await cli(["azure", "deploy", ...FAST], armEnv(fake.port));
  assert.equal(code, 0, stderr);
  assert.deepEqual(arm(fake.requests).filter((r) => r.method !== "GET").map((r) => r.path.split("/").at(-1)), ["listKeys"]);
  assert.equal(stdout.match(/exists, kept/g)?.length, 6);
  assert.match(stdout, /traffic already \{"blue":100\}/);
});

test("--dry-run prints the very requests a real run sends, and sends nothing", async (t) => {
  const fake = await fakeArm();
  t.after(fake.close);
  const dry = await cli(["azure", "deploy", "--dry-run"], armEnv(fake.port));
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(fake.requests.length, 0);
  const real = await cli(["azure", "deploy", ...FAST], armEnv(fake.port));
  assert.equal(real.code, 0, real.stderr);

  const base = `https://127.0.0.1:${fake.port}`;
  const printed = [...dry.stdout.matchAll(/^(?:GET|PUT|POST) \S+\n(?:\{\n[^]*?\n\}\n)?/gm)].map((m) => m[0]);
  const sent = fake.requests.filter((r) => !r.path.startsWith("/operations/")).map((r) => {
    const body = r.body && r.method === "PUT" && r.body.location ? { ...r.body, location: "<workspace location>" } : r.body;
    return formatRequest(r.method, `${base}${r.path}${r.apiVersion ? `?api-version=${r.apiVersion}` : ""}`, body === undefined ? undefined : JSON.stringify(body)).trim() + "\n";
  });
  // A dry run cannot poll, so drop each GET of the URL just requested: job polls and the GET that ends a long-running operation.
  const urlOf = (r: string) => r.split(/\s/)[1];
  // Nor can it know the endpoint exists, so its traffic step asks the workspace's location again.
  const workspace = `GET ${base}${W}?api-version=${API_VERSION}\n`;
  const comparable = (list: string[]) => list.filter((r: string, i: number) => r !== workspace && !(r.startsWith("GET") && i > 0 && urlOf(list[i - 1]) === urlOf(r)));
  const scored = printed.pop()!;
  assert.deepEqual(comparable(printed), comparable(sent.filter((r) => !r.startsWith(`POST ${base}/score`))));
  assert.match(scored, /^POST https:\/\/movielens-[0-9a-f]{8}\.<region>\.inference\.ml\.azure\.com\/score\n\{\n {2}"userId": 1,\n {2}"n": 10\n\}\n$/);
});

test("--dry-run without any Azure environment prints example requests and exits 0", async () => {
  const env = { ...process.env };
  for (const name of ["AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE", "AZUREML_DATA", "AZUREML_IMAGE", "AZURE_ARM_ENDPOINT"]) delete env[name];
  const { code, stdout } = await cli(["azure", "job", "--dry-run"], env);
  assert.equal(code, 0);
  assert.match(stdout, /^PUT https:\/\/management\.azure\.com\/subscriptions\/00000000-0000-0000-0000-000000000000\/resourceGroups\/movielens-rg\/providers\/Microsoft\.MachineLearningServices\/workspaces\/movielens-ws\/jobs\/movielens-train-[0-9a-f]{8}\?api-version=2022-10-01$/m);
  const missing = await cli(["azure", "endpoint"], env);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /expected AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE in the environment, missing AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE/);
});

test("Azure's errors surface with the step, the request and Azure's own text", async (t) => {
  const quota = "Not enough quota available for Standard_E2s_v3 in SubscriptionId 11111111. Current usage/limit: 4/6. Additional needed: 4";
  const taken = "Endpoint name movielens-x is already in use in region westeurope. Please choose another name.";
  const fake = await fakeArm({
    "PUT deployments/blue": { status: 400, code: "InferencingClientCreateDeploymentFailed", message: quota },
    "PUT onlineEndpoints/taken-name": { status: 409, code: "Conflict", message: taken },
    "PUT onlineEndpoints/crashing": { async: true, code: "DeploymentFailed", message: "container exited" },
    "PUT deployments/green": { async: true, code: "ResourceOperationFailure", message: "Container crashed: /ready never answered 200" },
  });
  t.after(fake.close);
  const env = armEnv(fake.port);

  const endpoint = await cli(["azure", "endpoint", "--endpoint", "taken-name", ...FAST], env);
  assert.equal(endpoint.code, 1, endpoint.stdout + endpoint.stderr);
  assert.equal(endpoint.stderr, `error: endpoint taken-name: PUT https://127.0.0.1:${fake.port}${W}/onlineEndpoints/taken-name?api-version=${API_VERSION} answered 409 Conflict: ${taken}\n`);

  const ok = await cli(["azure", "endpoint", "--endpoint", "ok-name", ...FAST], env);
  assert.equal(ok.code, 0, ok.stderr);
  const deployment = await cli(["azure", "deployment", "--endpoint", "ok-name", ...FAST], env);
  assert.equal(deployment.code, 1);
  assert.equal(deployment.stderr, `error: deployment ok-name/blue: PUT https://127.0.0.1:${fake.port}${W}/onlineEndpoints/ok-name/deployments/blue?api-version=${API_VERSION} answered 400 InferencingClientCreateDeploymentFailed: ${quota}\n`);

  const lro = await cli(["azure", "endpoint", "--endpoint", "crashing", ...FAST], env);
  assert.equal(lro.code, 1);
  assert.equal(lro.stderr, "error: endpoint crashing: The long-running operation has failed. DeploymentFailed. container exited\n");

  const crash = await cli(["azure", "deployment", "--endpoint", "ok-name", "--deployment", "green", ...FAST], env);
  assert.equal(crash.code, 1);
  assert.equal(crash.stderr, "error: deployment ok-name/green: The long-running operation has failed. ResourceOperationFailure. Container crashed: /ready never answered 200\n"
    + "container log (last 50 lines):\nBooting worker\nError: model.json not found\n");

  const bad = await cli(["azure", "endpoint", "--endpoint", "9-starts-with-digit", "--dry-run"], env);
  assert.match(bad.stderr, /an endpoint name must be 3-32 characters: a letter, then letters, digits and single hyphens, not ending in a hyphen; got "9-starts-with-digit"/);
});

test("a failed job ends the wait with its status and where its logs are", async (t) => {
  const fake = await fakeArm({}, "Failed");
  t.after(fake.close);
  const env = armEnv(fake.port);
  assert.equal((await cli(["azure", "job", "--job-name", "train-1", ...FAST], env)).code, 0);
  const wait = await cli(["azure", "wait", "--job-name", "train-1", ...FAST], env);
  assert.equal(wait.code, 1);
  assert.match(wait.stdout, /job train-1: Queued after \d+ s\njob train-1: Running after \d+ s\njob train-1: Failed after \d+ s\n/);
  assert.equal(wait.stderr, "error: job train-1 ended Failed, expected Completed; logs: https://ml.azure.com/runs/train-1\n");
});

test("an existing version with other contents is refused, not overwritten", async (t) => {
  const fake = await fakeArm();
  t.after(fake.close);
  const env = armEnv(fake.port);
  assert.equal((await cli(["azure", "environment"], env)).code, 0);
  const other = await cli(["azure", "environment", "--image", "testacr.azurecr.io/movielens-recsys:0.2.0"], env);
  assert.equal(other.stderr, 'error: environment movielens-recsys:1 exists with image "testacr.azurecr.io/movielens-recsys:0.1.0", expected "testacr.azurecr.io/movielens-recsys:0.2.0"; versions are immutable, pick another with --environment-version\n');
  assert.equal(fake.requests.filter((r) => r.method === "PUT").length, 1);
});

test("endpoint names: 3-32 characters, a letter first, single hyphens", () => {
  for (const ok of ["abc", "movielens-0b30de20", "a".repeat(32), "Blue-2"]) assert.doesNotThrow(() => checkEndpointName(ok), ok);
  for (const bad of ["ab", "a".repeat(33), "1abc", "ab--c", "abc-", "a_bc"]) assert.throws(() => checkEndpointName(bad), RangeError, bad);
});

test("deploy/ YAML says what the code sends", async () => {
  const yaml = async (file: string) => readFile(path.join(ROOT, "deploy", file), "utf8");
  assert.ok((await yaml("job.yml")).includes(`command: ${TRAIN_COMMAND}`));
  const deployment = await yaml("deployment-blue.yml");
  assert.match(deployment, new RegExp(`instance_type: ${INSTANCE_TYPE}\\n`));
  assert.match(deployment, /instance_count: 1\n/);
  const environment = await yaml("environment.yml");
  for (const route of ["live", "ready", "score"] as const) assert.match(environment, new RegExp(`path: ${CONTAINER[route]}\\n\\s+port: ${CONTAINER.port}\\n`));
  assert.match(await yaml("endpoint.yml"), /auth_mode: key\n/);
});

test("notebook 08 runs the flow against the fake ARM, one step per cell", { skip: !existsSync("/usr/bin/jupyter") && "no /usr/bin/jupyter" }, async (t) => {
  const fake = await fakeArm();
  t.after(fake.close);
  const out = path.join(tmp, "08.ipynb");
  const env = { ...armEnv(fake.port), AZUREML_POLL_SECONDS: "0.01", PATH: `${path.join(ROOT, "node_modules/.bin")}:${process.env.PATH}` };
  await new Promise<void>((resolve, reject) => execFile("/usr/bin/jupyter", ["nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=300",
    path.join(ROOT, "notebooks/08-deploy.ipynb"), "--output", out], { env }, (error, _stdout, stderr) => (error ? reject(new Error(stderr)) : resolve())));
  const outputs = (JSON.parse(await readFile(out, "utf8")).cells as { outputs?: { name?: string; text?: string[] }[] }[])
    .flatMap((c) => c.outputs ?? []);
  assert.deepEqual(outputs.filter((o) => o.name !== "stdout"), []);
  const text = outputs.map((o) => (o.text ?? []).join("")).join("");
  assert.match(text, /^Workspace ws-test in rg-test, via https:\/\/127\.0\.0\.1:\d+$/m);
  assert.match(text, /endpoint movielens-[0-9a-f]{8}: traffic \{"blue":100\}/);
  const expected = recommendForUser(model, 1, 10).recommendations.map((r) => r.movieId);
  assert.deepEqual([...text.matchAll(/^ +\d+\. +(\d+) /gm)].map((m) => Number(m[1])), expected);
  assert.ok(fake.requests.some((r) => r.method === "PUT" && r.path.endsWith("/deployments/blue")));
});
