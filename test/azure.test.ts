import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { BlobServiceClient } from "@azure/storage-blob";
import type { FastifyInstance } from "fastify";
import { API_VERSION, formatRequest } from "../lib/azure/client";
import { buildContext, contextFolder } from "../lib/azure/context";
import { CONTAINER, INSTANCE_TYPE, MODEL_PATH, TRAIN_COMMAND, checkEndpointName, modelUriOf } from "../lib/azure/steps";
import { loadModel, saveModel } from "../lib/model-io";
import { recommendForUser } from "../lib/recommend";
import { buildApp } from "../lib/serve";
import { train } from "../lib/train";
import { writeSynthetic } from "../lib/synthetic";
import { swaggerValidator } from "./swagger";

const ROOT = path.resolve(__dirname, "..", "..");
const CLI = path.join(ROOT, "dist/lib/cli.js");
const SUB = "11111111-2222-3333-4444-555555555555";
const W = `/subscriptions/${SUB}/resourceGroups/rg-test/providers/Microsoft.MachineLearningServices/workspaces/ws-test`;
const TOKEN = "arm-test-token";
const KEY = "primary-endpoint-key";
/** Azurite's well-known account, standing in for the workspace's default datastore account. */
const STORAGE = { account: "devstoreaccount1", container: "azureml-blobstore-test", key: "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==" };
const CONTEXT_URL = `https://${STORAGE.account}.blob.core.windows.net/${STORAGE.container}/`;

interface Recorded { method: string; path: string; query: URLSearchParams; apiVersion: string | null; authorization?: string; body?: any }
/** An ARM answer to give instead of the usual: a synchronous error, a long-running operation that fails, or one that never ends. */
interface Fault { status?: number; code: string; message: string; async?: boolean; hang?: boolean }

let tmp: string;
let cert: { key: Buffer; cert: Buffer; file: string };
let scoring: FastifyInstance;
let model: Awaited<ReturnType<typeof loadModel>>;
let azurite: ChildProcess;
let storageConnection: string;
const validate = swaggerValidator();

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "azure-test-"));
  azurite = spawn(process.execPath, [path.join(ROOT, "node_modules/azurite/dist/src/blob/main.js"), "--blobHost", "127.0.0.1",
    "--blobPort", "0", "--location", path.join(tmp, "azurite"), "--silent", "--disableTelemetry", "--skipApiVersionCheck"],
  { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    azurite.stdout!.on("data", (d: Buffer) => {
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec((out += d));
      if (m) resolve(Number(m[1]));
    });
    azurite.on("exit", (code) => reject(new Error(`azurite exited with ${code} before listening: ${out}`)));
  });
  storageConnection = `DefaultEndpointsProtocol=http;AccountName=${STORAGE.account};AccountKey=${STORAGE.key};BlobEndpoint=http://127.0.0.1:${port}/${STORAGE.account};`;
  await BlobServiceClient.fromConnectionString(storageConnection).getContainerClient(STORAGE.container).create();
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
  if (azurite && azurite.exitCode === null) await new Promise((resolve) => azurite.once("exit", resolve).kill("SIGTERM"));
  await rm(tmp, { recursive: true, force: true });
});

/**
 * A local HTTPS server answering like ARM for one workspace: stores what is PUT, answers 404 for what is not there,
 * lists collections (datastores, deployments, model versions), runs endpoint and deployment PUTs and endpoint DELETEs
 * as long-running operations (Azure-AsyncOperation, InProgress once, then Succeeded), moves a job through
 * `jobStatuses` over successive GETs (staying at the last), and serves /score from the real scoring app, answering
 * 424 with the container's status in headers for any non-200 of it, as Azure does.
 */
async function fakeArm(faults: Record<string, Fault> = {}, jobStatuses = ["Queued", "Running", "Completed"]) {
  const requests: Recorded[] = [];
  const resources = new Map<string, any>();
  const operations = new Map<string, { polls: number; resource: string; remove: boolean; fault?: Fault }>();
  const jobPolls = new Map<string, number>();
  const datastore = `${W}/datastores/workspaceblobstore`;
  resources.set(datastore.toLowerCase(), { id: datastore, name: "workspaceblobstore", properties: {
    datastoreType: "AzureBlob", accountName: STORAGE.account, containerName: STORAGE.container, endpoint: "core.windows.net",
    protocol: "https", credentials: { credentialsType: "AccountKey" }, isDefault: true,
  } });
  const server: https.Server = https.createServer({ key: cert.key, cert: cert.cert }, async (req, res) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    const url = new URL(req.url!, "https://127.0.0.1");
    const body = text ? JSON.parse(text) : undefined;
    requests.push({ method: req.method!, path: url.pathname, query: url.searchParams, apiVersion: url.searchParams.get("api-version"), authorization: req.headers.authorization, body });
    const send = (status: number, json: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(json));
    };
    const armError = (status: number, code: string, message: string) => send(status, { error: { code, message, details: [] } });
    const key = url.pathname.toLowerCase();
    const fault = faults[`${req.method} ${url.pathname.split("/").slice(-2).join("/")}`];
    const operation = (resource: string, remove: boolean, status: number, json: unknown) => {
      const op = `/operations/${randomUUID()}`;
      operations.set(op, { polls: 0, resource, remove, fault: fault?.async || fault?.hang ? fault : undefined });
      const monitor = `https://127.0.0.1:${port}${op}?api-version=${API_VERSION}`;
      return send(status, json, { "azure-asyncoperation": monitor, location: monitor, "retry-after": "0" });
    };

    if (url.pathname === CONTAINER.score) {
      if (req.headers.authorization !== `Bearer ${KEY}`) return armError(401, "Unauthorized", "bad key");
      const answer = await scoring.inject({ method: "POST", url: "/score", payload: body });
      if (answer.statusCode === 200) return res.writeHead(200, { "content-type": "application/json" }).end(answer.body);
      return res.writeHead(424, { "content-type": "application/json", "ms-azureml-model-error-statuscode": String(answer.statusCode), "ms-azureml-model-error-reason": "model_error" })
        .end(JSON.stringify({ message: "An unexpected error occurred in scoring script. Check the logs for more info." }));
    }
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return armError(401, "AuthenticationFailed", "no or wrong bearer token");
    if (url.searchParams.get("api-version") !== API_VERSION) return armError(400, "InvalidApiVersionParameter", `api-version ${url.searchParams.get("api-version")}`);
    if (url.pathname.startsWith("/operations/")) {
      const op = operations.get(url.pathname)!;
      if (op.polls++ === 0 || op.fault?.hang) return send(200, { status: "InProgress" });
      if (op.fault) return send(200, { status: "Failed", error: { code: op.fault.code, message: op.fault.message } });
      if (!op.remove) resources.get(op.resource).properties.provisioningState = "Succeeded";
      else for (const k of [...resources.keys()]) if (k === op.resource || k.startsWith(`${op.resource}/`)) resources.delete(k);
      return send(200, { status: "Succeeded" });
    }
    if (fault && !fault.async && !fault.hang) return armError(fault.status!, fault.code, fault.message);
    if (req.method === "GET" && url.pathname === W) return send(200, { id: W, name: "ws-test", location: "westeurope" });
    if (req.method === "POST" && url.pathname.endsWith("/listKeys")) return send(200, { primaryKey: KEY, secondaryKey: "secondary" });
    if (req.method === "POST" && url.pathname.endsWith("/listSecrets")) return send(200, { secretsType: "AccountKey", key: STORAGE.key });
    if (req.method === "POST" && url.pathname.endsWith("/getLogs")) {
      const deployment = resources.get(key.replace(/\/getlogs$/, ""));
      return deployment ? send(200, { content: "Booting worker\nError: model.json not found" }) : armError(404, "UserError", "deployment not found");
    }
    if (req.method === "GET" && /\/(datastores|deployments|versions)$/.test(key)) {
      const children = [...resources].filter(([k]) => k.startsWith(`${key}/`) && !k.slice(key.length + 1).includes("/")).map(([, r]) => r);
      const parent = key.replace(/\/(deployments|versions)$/, "");
      if (!/datastores$/.test(key) && !resources.has(parent) && !/\/models\//.test(key)) return armError(404, "UserError", `Could not find ${parent}`);
      return send(200, { value: children.filter((r) => url.searchParams.get("isDefault") !== "true" || r.properties.isDefault) });
    }
    if (req.method === "GET") {
      const found = resources.get(key);
      if (!found) return armError(404, "UserError", `Could not find ${url.pathname.split("/").slice(-2).join(" ")}`);
      if (/\/jobs\//.test(key)) {
        const polls = (jobPolls.get(key) ?? 0) + 1;
        jobPolls.set(key, polls);
        found.properties.status = jobStatuses[Math.min(polls - 1, jobStatuses.length - 1)];
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
        return operation(key, false, existed ? 200 : 201, resource);
      }
      if (/\/jobs\//.test(key)) resource.properties.services = { Studio: { endpoint: `https://ml.azure.com/runs/${name}` } };
      return send(existed ? 200 : 201, resource);
    }
    if (req.method === "DELETE") {
      if (!resources.has(key)) return res.writeHead(204).end();
      if (/\/onlineendpoints\/[^/]+$/.test(key)) return operation(key, true, 202, null);
      resources.delete(key);
      return send(200, null);
    }
    armError(405, "MethodNotAllowed", `${req.method} ${url.pathname}`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port: number = (server.address() as AddressInfo).port;
  // Closing also checks every ARM request the test made against the swagger (getLogs and listKeys included).
  const close = async () => {
    await new Promise((resolve) => server.close(resolve));
    if (validate) assert.deepEqual(arm(requests).flatMap((r) => validate(r)), [], "requests against the 2022-10-01 swagger");
  };
  return { server, requests, resources, port, close };
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
  AZUREML_DATA: "azureml://datastores/workspaceblobstore/paths/movielens/ml-latest-small",
  AZURE_STORAGE_CONNECTION_STRING: storageConnection,
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
    "GET W/datastores", "GET W/environments/movielens-recsys/versions/1", "PUT W/environments/movielens-recsys/versions/1",
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
  // The image: built by Azure ML from the build context, which sits on the default datastore (Azurite here) file for file.
  const context = await buildContext();
  assert.deepEqual(put("/environments/movielens-recsys/versions/1").properties.build, { contextUri: `${CONTEXT_URL}${contextFolder(context)}`, dockerfilePath: "deploy/Dockerfile" });
  const uploaded = BlobServiceClient.fromConnectionString(storageConnection).getContainerClient(STORAGE.container);
  const blobs: string[] = [];
  for await (const blob of uploaded.listBlobsFlat({ prefix: contextFolder(context) })) blobs.push(blob.name.slice(contextFolder(context).length));
  assert.deepEqual(blobs.sort(), context.files);
  for (const file of ["deploy/Dockerfile", "package.json", "lib/azure/steps.ts"]) {
    assert.equal((await uploaded.getBlobClient(`${contextFolder(context)}${file}`).downloadToBuffer()).toString(), await readFile(path.join(ROOT, file), "utf8"), file);
  }
  const jobBody = put(`/jobs/${job}`).properties;
  assert.equal(jobBody.command, TRAIN_COMMAND);
  assert.deepEqual(jobBody.inputs, { data: { jobInputType: "uri_folder", uri: `${W}/data/movielens/versions/1`, mode: "ReadOnlyMount" } });
  assert.deepEqual(jobBody.outputs, { model: { jobOutputType: "custom_model", mode: "Upload" } });
  assert.equal(jobBody.environmentId, `${W}/environments/movielens-recsys/versions/1`);
  assert.equal(jobBody.computeId, `${W}/computes/cpu-cluster`);
  assert.deepEqual(put("/models/movielens_recommender/versions/1").properties, {
    description: "item-based cosine neighbours (movielens-recsys)", jobName: job, modelType: "custom_model", modelUri: `azureml://jobs/${job}/outputs/model/paths/model/`,
  });
  const endpointPuts = fake.requests.filter((r) => r.method === "PUT" && r.path === `${W}/onlineEndpoints/${endpoint}`).map((r) => r.body);
  assert.deepEqual(endpointPuts[0], { location: "westeurope", identity: { type: "SystemAssigned" }, properties: { authMode: "Key", description: "movielens-recsys recommendations" } });
  assert.deepEqual(endpointPuts[1], { ...endpointPuts[0], properties: { ...endpointPuts[0].properties, traffic: { blue: 100 } } });
  const deployment = put(`/onlineEndpoints/${endpoint}/deployments/blue`);
  assert.deepEqual(deployment.sku, { name: "Default", capacity: 1 });
  assert.equal(deployment.properties.instanceType, INSTANCE_TYPE);
  assert.equal(deployment.properties.model, `${W}/models/movielens_recommender/versions/1`);
  assert.equal(deployment.properties.endpointComputeType, "Managed");
  assert.deepEqual(deployment.properties.requestSettings, { requestTimeout: "PT10S", maxConcurrentRequestsPerInstance: 2 });

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
  assert.match(dry.stdout, /^build context: \d+ files, \d+ KiB \(deploy\/Dockerfile lib\/.*package-lock\.json package\.json tsconfig\.json\)\nwould be uploaded to https:\/\/<account>\.blob\.core\.windows\.net\/<container>\/LocalUpload\/[0-9a-f]{32}\/context\/ \(datastore <default datastore>; dry run\)$/m);
  const sent = fake.requests.filter((r) => !r.path.startsWith("/operations/")).map((r) => {
    const body = r.body && r.method === "PUT" && r.body.location ? { ...r.body, location: "<workspace location>" }
      : r.body?.properties?.build ? JSON.parse(JSON.stringify(r.body).replace(CONTEXT_URL, "https://<account>.blob.core.windows.net/<container>/")) : r.body;
    return formatRequest(r.method, `${base}${r.path}?${r.query}`, body === undefined ? undefined : JSON.stringify(body)).trim() + "\n";
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
  const fake = await fakeArm({}, ["Queued", "Running", "Failed"]);
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
  assert.equal((await cli(["azure", "image", "--image", "testacr.azurecr.io/movielens-recsys:0.1.0"], env)).code, 0);
  const other = await cli(["azure", "image", "--image", "testacr.azurecr.io/movielens-recsys:0.2.0"], env);
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
  assert.ok(TRAIN_COMMAND.endsWith(`--model-dir \${{outputs.model}}/${MODEL_PATH}`));
  assert.match(await yaml("model.yml"), new RegExp(`\npath: ${modelUriOf("movielens-train-00000000")}\n`));
  const deployment = await yaml("deployment-blue.yml");
  assert.match(deployment, new RegExp(`instance_type: ${INSTANCE_TYPE}\\n`));
  assert.match(deployment, /instance_count: 1\n/);
  assert.match(deployment, new RegExp(`max_concurrent_requests_per_instance: ${CONTAINER.workers}\\n`));
  // As many requests at once as the image's CMD starts server processes.
  assert.match(await readFile(path.join(ROOT, "deploy/Dockerfile"), "utf8"), new RegExp(`^CMD \\[.*"--workers", "${CONTAINER.workers}"`, "m"));
  assert.match(await yaml("environment.yml"), /\nbuild:\n {2}path: \.\.\n {2}dockerfile_path: deploy\/Dockerfile\n/);
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
  // The last cell, teardown off: the deletes are printed, not sent.
  assert.match(text, /^DELETE https:\/\/127\.0\.0\.1:\d+\/subscriptions\/.*\/onlineEndpoints\/movielens-[0-9a-f]{8}\?api-version=2022-10-01$/m);
  assert.match(text, /endpoint movielens-[0-9a-f]{8} and deployment blue: would be deleted \(dry run\)\n/);
  assert.ok(!fake.requests.some((r) => r.method === "DELETE"));
});

test("every request of deploy, a second deploy and delete is valid against the 2022-10-01 swagger, discriminators included",
  { skip: !validate && "../shared/spec/azure-rest-2022-10-01 is absent: the swagger check needs it" }, async (t) => {
    const fake = await fakeArm();
    t.after(fake.close);
    const env = armEnv(fake.port);
    for (const args of [["deploy"], ["deploy"], ["delete", "--yes", "--models"]]) {
      const run = await cli(["azure", ...args, ...FAST], env);
      assert.equal(run.code, 0, run.stderr);
    }
    const sent = arm(fake.requests);
    assert.deepEqual(sent.flatMap((r) => validate!(r)), []);
    const kinds = new Set(sent.map((r) => `${r.method} ${r.path.replace(W, "W").replace(/\/(jobs|onlineEndpoints)\/[^/]+/, "/$1/<name>")}`));
    for (const kind of ["PUT W/data/movielens/versions/1", "PUT W/environments/movielens-recsys/versions/1", "PUT W/jobs/<name>",
      "PUT W/models/movielens_recommender/versions/1", "PUT W/onlineEndpoints/<name>", "PUT W/onlineEndpoints/<name>/deployments/blue",
      "GET W/datastores", "DELETE W/onlineEndpoints/<name>", "DELETE W/models/movielens_recommender/versions/1"]) assert.ok(kinds.has(kind), kind);
  });

test("the swagger check refuses a wrong discriminator, an unknown or read-only property, a missing required one, a bad duration",
  { skip: !validate && "../shared/spec/azure-rest-2022-10-01 is absent: the swagger check needs it" }, () => {
    const query = new URLSearchParams(`api-version=${API_VERSION}`);
    const job = { properties: { jobType: "Command", command: "node x", environmentId: `${W}/environments/e/versions/1`,
      inputs: { data: { jobInputType: "uri_folder", uri: `${W}/data/d/versions/1`, mode: "ReadOnlyMount" } } } };
    const check = (body: any, suffix = "/jobs/j") => validate!({ method: "PUT", path: `${W}${suffix}`, query, body });
    assert.deepEqual(check(job), []);
    const change = (edit: (b: any) => void) => { const b = structuredClone(job); edit(b); return check(b); };
    assert.match(change((b) => { b.properties.jobType = "Commands"; }).join(), /jobType must be equal to one of the allowed values/);
    assert.match(change((b) => { b.properties.inputs.data.jobInputType = "uri_dir"; }).join(), /inputs\/data\/jobInputType must be equal to one of the allowed values/);
    assert.match(change((b) => { b.properties.inputs.data.path = "x"; }).join(), /inputs\/data must NOT have unevaluated properties \{"unevaluatedProperty":"path"\}/);
    assert.match(change((b) => { b.properties.status = "Running"; }).join(), /properties\/status is read-only/);
    assert.match(change((b) => { delete b.properties.command; }).join(), /must have required property 'command'/);
    // A literal input has `value`, not `uri`: the subtype follows jobInputType.
    assert.match(change((b) => { b.properties.inputs.data.jobInputType = "literal"; }).join(), /must have required property 'value'/);
    const deployment = { location: "w", sku: { name: "Default", capacity: 1 }, properties: { endpointComputeType: "Managed", requestSettings: { requestTimeout: "10s" } } };
    assert.match(check(deployment, "/onlineEndpoints/ep/deployments/blue").join(), /requestTimeout must match format "duration"/);
    assert.match(validate!({ method: "DELETE", path: `${W}/onlineEndpoints/ep`, query, body: {} }).join(), /takes no body/);
    assert.match(validate!({ method: "POST", path: `${W}/onlineEndpoints/ep/delete`, query }).join(), /no such operation/);
  });

test("a job that stops responding is waited for: NotResponding is not final", async (t) => {
  const fake = await fakeArm({}, ["Queued", "NotResponding", "Running", "Completed"]);
  t.after(fake.close);
  const env = armEnv(fake.port);
  assert.equal((await cli(["azure", "job", "--job-name", "train-2", ...FAST], env)).code, 0);
  const wait = await cli(["azure", "wait", "--job-name", "train-2", ...FAST], env);
  assert.equal(wait.code, 0, wait.stderr);
  assert.match(wait.stdout, /Queued after \d+ s\n.*NotResponding after \d+ s \(still waiting: a job can come back from it\)\n.*Running after \d+ s\n.*Completed after \d+ s\n/);
});

test("every wait stops at --timeout: the job's and a long-running operation's", async (t) => {
  const fake = await fakeArm({ "PUT onlineEndpoints/stuck": { code: "", message: "", hang: true } }, ["Queued", "Running"]);
  t.after(fake.close);
  const env = armEnv(fake.port);
  assert.equal((await cli(["azure", "job", "--job-name", "train-3", ...FAST], env)).code, 0);
  const wait = await cli(["azure", "wait", "--job-name", "train-3", "--timeout", "0.005", ...FAST], env);
  assert.equal(wait.code, 1);
  assert.equal(wait.stderr, "error: job train-3: gave up waiting after 0.005 min (--timeout); it goes on in Azure, run the step again to wait longer\n");
  const endpoint = await cli(["azure", "endpoint", "--endpoint", "stuck", "--timeout", "0.005", ...FAST], env);
  assert.equal(endpoint.code, 1);
  assert.equal(endpoint.stderr, "error: endpoint stuck: gave up waiting after 0.005 min (--timeout); it goes on in Azure, run the step again to wait longer\n");
});

test("Ctrl-C stops a wait at once, says it goes on in Azure, and starts nothing more", async (t) => {
  const fake = await fakeArm({}, ["Queued", "Running"]);
  t.after(fake.close);
  const env = armEnv(fake.port);
  assert.equal((await cli(["azure", "job", "--job-name", "train-4", ...FAST], env)).code, 0);
  const child = spawn(process.execPath, [CLI, "azure", "deploy", "--job-name", "train-4", "--poll-interval", "0.05"], { env });
  let stdout = "", stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  await new Promise<void>((resolve) => child.stdout.on("data", (d) => {
    stdout += d;
    if (/train-4: Running/.test(stdout)) resolve();
  }));
  const t0 = Date.now();
  child.kill("SIGINT");
  const code = await new Promise((resolve) => child.on("exit", resolve));
  assert.equal(code, 1);
  assert.ok(Date.now() - t0 < 5000, `exited ${Date.now() - t0} ms after Ctrl-C`);
  assert.equal(stderr, "error: job train-4: interrupted (Ctrl-C) while waiting; it goes on in Azure, run the step again to resume waiting\n");
  assert.ok(!fake.requests.some((r) => r.path.includes("/models/")), "no step after the wait");
});

test("azure delete: refuses without a terminal unless --yes, deletes the endpoint (its deployments with it) and --models the model versions", async (t) => {
  const fake = await fakeArm();
  t.after(fake.close);
  const env = armEnv(fake.port);
  assert.equal((await cli(["azure", "deploy", ...FAST], env)).code, 0);
  const endpoint = [...fake.resources.keys()].find((k) => /onlineendpoints\/[^/]+$/.test(k))!;
  const writes = () => fake.requests.filter((r) => r.method === "DELETE").map(line);

  const refused = await cli(["azure", "delete", "--models", ...FAST], env); // execFile: stdin is a pipe, not a terminal
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^error: azure delete would delete endpoint movielens-\w+ with deployment blue, model movielens_recommender:1: it asks on a terminal, and there is none; pass --yes to delete without asking\n$/);
  assert.deepEqual(writes(), []);

  const dry = await cli(["azure", "delete", "--models", "--dry-run"], env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^DELETE https:\/\/127\.0\.0\.1:\d+\/subscriptions\/.*\/onlineEndpoints\/movielens-\w+\?api-version=2022-10-01$/m);
  assert.match(dry.stdout, /^DELETE https:\/\/127\.0\.0\.1:\d+\/subscriptions\/.*\/models\/movielens_recommender\/versions\/1\?api-version=2022-10-01$/m);
  assert.deepEqual(writes(), []);

  const done = await cli(["azure", "delete", "--yes", "--models", ...FAST], env);
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stdout, /endpoint movielens-\w+ and deployment blue: deleted\nmodel movielens_recommender:1: deleted\n$/);
  assert.deepEqual(writes().map((l) => l.replace(/movielens-\w+/, "<endpoint>")), ["DELETE W/onlineEndpoints/<endpoint>", "DELETE W/models/movielens_recommender/versions/1"]);
  assert.ok(!fake.resources.has(endpoint) && !fake.resources.has(`${endpoint}/deployments/blue`), "endpoint and deployment gone");

  const again = await cli(["azure", "delete", "--yes", "--models", ...FAST], env);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /not found, nothing to delete \(nor any version of model movielens_recommender\)\n$/);
});

test("azure delete asks on a terminal: anything but y keeps the endpoint", { skip: !existsSync("/usr/bin/script") && "no /usr/bin/script to give it a terminal" }, async (t) => {
  const fake = await fakeArm();
  t.after(fake.close);
  const env = armEnv(fake.port);
  assert.equal((await cli(["azure", "endpoint", "--endpoint", "to-delete", ...FAST], env)).code, 0);
  const onTerminal = (answer: string) => new Promise<string>((resolve) => {
    // script(1) runs the command on a pseudo-terminal; its stdin is what the user types.
    const child = spawn("/usr/bin/script", ["-qec", [process.execPath, CLI, "azure", "delete", "--endpoint", "to-delete", ...FAST].join(" "), "/dev/null"], { env });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes("[y/N]")) child.stdin.end(`${answer}\n`);
    });
    child.on("exit", () => resolve(out));
  });
  assert.match(await onTerminal("n"), /Delete endpoint to-delete\? \[y\/N\] .*nothing deleted/s);
  assert.ok(fake.resources.has(`${W}/onlineEndpoints/to-delete`.toLowerCase()));
  assert.match(await onTerminal("\x03"), /Delete endpoint to-delete\? \[y\/N\] .*nothing deleted/s); // Ctrl-C
  assert.ok(fake.resources.has(`${W}/onlineEndpoints/to-delete`.toLowerCase()));
  assert.match(await onTerminal("y"), /endpoint to-delete: deleted/);
  assert.ok(!fake.resources.has(`${W}/onlineEndpoints/to-delete`.toLowerCase()));
});

test("a 4xx of the container reaches the caller as Azure's 424, with the container's status from its headers", async (t) => {
  const fake = await fakeArm();
  t.after(fake.close);
  const env = armEnv(fake.port);
  assert.equal((await cli(["azure", "endpoint", "--endpoint", "ep-424", ...FAST], env)).code, 0);
  const unknown = await cli(["azure", "invoke", "--endpoint", "ep-424", "--user", "999999999"], env);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^error: endpoint ep-424: POST https:\/\/127\.0\.0\.1:\d+\/score answered 424 \(the container answered 404: model_error\): /);
});
