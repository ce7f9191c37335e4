import { createHash } from "node:crypto";
import type {
  DataVersionBase, EnvironmentVersion, ModelVersion, OnlineDeployment, OnlineEndpoint,
} from "@azure/arm-machinelearning";
import { createHttpHeaders, createPipelineRequest } from "@azure/core-rest-pipeline";
import { describeLocation, isBlobLocation, parseBlobLocation } from "../blob";
import { API_VERSION, type Azure, AzureError, type Workspace, azureError, isNotFound, workspaceId } from "./client";

/** The port and routes of the scoring server in deploy/Dockerfile (lib/serve.ts). */
export const CONTAINER = { port: 5001, live: "/live", ready: "/ready", score: "/score" };
/** What the command job runs in the image (deploy/job.yml says the same). */
export const TRAIN_COMMAND = "node /app/dist/lib/cli.js train --data ${{inputs.data}} --model-dir ${{outputs.model}}/model";
export const INSTANCE_TYPE = "Standard_E2s_v3";

/** Everything the flow creates, by name and version; `settingsFrom` fills the defaults. */
export interface Settings {
  /** Where the MovieLens folder is: a Blob location, or azureml://datastores/<ds>/paths/<path>. */
  data?: string;
  dataName: string;
  dataVersion: string;
  /** The image built from deploy/Dockerfile, pushed to a registry the workspace can pull from. */
  image?: string;
  environmentName: string;
  environmentVersion: string;
  compute: string;
  /** Default: derived from the job's body, so re-running the flow finds the same job instead of training again. */
  jobName?: string;
  modelName: string;
  modelVersion: string;
  /** Default: derived from the workspace (endpoint names are unique per region). */
  endpoint?: string;
  deployment: string;
  instanceType: string;
  user: number;
  n: number;
}

export const DEFAULT_SETTINGS = {
  dataName: "movielens", dataVersion: "1", environmentName: "movielens-recsys", environmentVersion: "1",
  compute: "cpu-cluster", modelName: "movielens_recommender", modelVersion: "1", deployment: "blue",
  instanceType: INSTANCE_TYPE, user: 1, n: 10,
};

/** Example values a dry run uses when neither options nor the environment give them. */
const EXAMPLE_SETTINGS = {
  data: "https://movielensdata.blob.core.windows.net/movielens/ml-latest-small",
  image: "movielensacr.azurecr.io/movielens-recsys:0.1.0",
};

/** Settings from options, then $AZUREML_DATA, $AZUREML_IMAGE, $AZUREML_COMPUTE, $AZUREML_ENDPOINT, then defaults. */
export function settingsFrom(options: Partial<Settings>, env: NodeJS.ProcessEnv = process.env, dryRun = false): Settings {
  const fromEnv: Partial<Settings> = { data: env.AZUREML_DATA, image: env.AZUREML_IMAGE, compute: env.AZUREML_COMPUTE, endpoint: env.AZUREML_ENDPOINT };
  const defined = (o: Partial<Settings>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ""));
  const s = { ...DEFAULT_SETTINGS, ...(dryRun ? EXAMPLE_SETTINGS : {}), ...defined(fromEnv), ...defined(options) } as Settings;
  if (s.endpoint !== undefined) checkEndpointName(s.endpoint);
  return s;
}

/** Throws unless `name` is a valid online endpoint or deployment name. */
export function checkEndpointName(name: string): void {
  if (!/^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$/.test(name)) {
    throw new RangeError(`an endpoint name must be 3-32 characters: a letter, then letters, digits and single hyphens, not ending in a hyphen; got "${name}"`);
  }
}

const shortHash = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 8);

/** The endpoint's name: given, or `movielens-<hash of the workspace>` (stable, valid, unlikely to be taken). */
const endpointNameOf = (az: Azure, s: Settings) => s.endpoint ?? `movielens-${shortHash(workspaceId(az.ws).toLowerCase())}`;

/** The data asset's URI for `Settings.data`: a folder URI Azure ML mounts into the job. */
function dataUriOf(ws: Workspace, data: string | undefined): string {
  if (!data) throw new AzureError("expected the data's location in --data or $AZUREML_DATA, got neither");
  const datastore = /^azureml:\/\/datastores\/([^/]+)\/paths\/(.*?)\/?$/.exec(data);
  if (datastore) {
    return `azureml://subscriptions/${ws.subscriptionId}/resourcegroups/${ws.resourceGroup}/workspaces/${ws.workspace}/datastores/${datastore[1]}/paths/${datastore[2]}/`;
  }
  if (data.startsWith("azureml://")) return data;
  if (isBlobLocation(data)) {
    const location = parseBlobLocation(data);
    if (location.sas) throw new AzureError(`the data asset would store the SAS of ${describeLocation(location)}; give the location without it (or a datastore path, azureml://datastores/<ds>/paths/<path>)`);
    return `${describeLocation(location)}/`;
  }
  throw new AzureError(`expected the data as a Blob location or azureml://datastores/<datastore>/paths/<path>, got "${data}"`);
}

const rg = (az: Azure) => [az.ws.resourceGroup, az.ws.workspace] as const;
const lro = (az: Azure) => ({ updateIntervalInMs: az.pollMs });

/** Runs `get`; undefined when ARM answers 404. */
async function find<T>(get: () => Promise<T>): Promise<T | undefined> {
  try {
    return await get();
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** Runs a step, turning any failure into an AzureError that carries Azure's own text. */
async function step<T>(name: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    throw azureError(name, e);
  }
}

/** Logs what a step did: created, already there, or (dry run) would create. */
function report(az: Azure, what: string, existed: boolean): void {
  az.log(existed ? `${what}: exists, kept` : az.dryRun ? `${what}: would be created (dry run)` : `${what}: created`);
}

/** Versions are immutable: an existing one must already be what we would create. */
function sameOrThrow(what: string, field: string, have: unknown, want: unknown, option: string): void {
  if (have !== want) throw new AzureError(`${what} exists with ${field} ${JSON.stringify(have)}, expected ${JSON.stringify(want)}; versions are immutable, pick another with ${option}`);
}

/** Step 1: the data asset `dataName:dataVersion`, a uri_folder pointing at the MovieLens folder. */
export async function createDataAsset(az: Azure, s: Settings): Promise<DataVersionBase> {
  const what = `data asset ${s.dataName}:${s.dataVersion}`;
  const dataUri = dataUriOf(az.ws, s.data);
  return step(what, async () => {
    const existing = await find(() => az.client.dataVersions.get(...rg(az), s.dataName, s.dataVersion));
    if (existing) sameOrThrow(what, "dataUri", existing.properties.dataUri, dataUri, "--data-version");
    report(az, what, !!existing);
    return existing ?? az.client.dataVersions.createOrUpdate(...rg(az), s.dataName, s.dataVersion, {
      properties: { dataType: "uri_folder", dataUri, description: "MovieLens ratings.csv and movies.csv" },
    });
  });
}

/** The environment's ARM id. */
const environmentIdOf = (az: Azure, s: Settings) => `${workspaceId(az.ws)}/environments/${s.environmentName}/versions/${s.environmentVersion}`;

/** Step 2: the environment `environmentName:environmentVersion` from deploy/'s image, with the scoring server's routes. */
export async function createEnvironment(az: Azure, s: Settings): Promise<EnvironmentVersion> {
  const what = `environment ${s.environmentName}:${s.environmentVersion}`;
  if (!s.image) throw new AzureError("expected the image in --image or $AZUREML_IMAGE, got neither");
  const route = (path: string) => ({ path, port: CONTAINER.port });
  return step(what, async () => {
    const existing = await find(() => az.client.environmentVersions.get(...rg(az), s.environmentName, s.environmentVersion));
    if (existing) sameOrThrow(what, "image", existing.properties.image, s.image, "--environment-version");
    report(az, what, !!existing);
    return existing ?? az.client.environmentVersions.createOrUpdate(...rg(az), s.environmentName, s.environmentVersion, {
      properties: {
        image: s.image,
        osType: "Linux",
        inferenceConfig: { livenessRoute: route(CONTAINER.live), readinessRoute: route(CONTAINER.ready), scoringRoute: route(CONTAINER.score) },
        description: "movielens-recsys: the training CLI and the scoring server (deploy/Dockerfile)",
      },
    });
  });
}

/** The command job's body: our `train` on the data asset, the model written to the `model` output. */
function jobBody(az: Azure, s: Settings) {
  return {
    properties: {
      jobType: "Command",
      displayName: "movielens-recsys train",
      experimentName: "movielens-recsys",
      command: TRAIN_COMMAND,
      environmentId: environmentIdOf(az, s),
      computeId: `${workspaceId(az.ws)}/computes/${s.compute}`,
      inputs: { data: { jobInputType: "uri_folder", uri: `azureml:${workspaceId(az.ws)}/data/${s.dataName}/versions/${s.dataVersion}`, mode: "ReadOnlyMount" } },
      outputs: { model: { jobOutputType: "custom_model", mode: "Upload" } },
    },
  };
}

/** The job's name: given, or `movielens-train-<hash of its body>`. */
export const jobNameOf = (az: Azure, s: Settings) => s.jobName ?? `movielens-train-${shortHash(JSON.stringify(jobBody(az, s)))}`;

const jobUrl = (az: Azure, name: string) => `${az.ws.armEndpoint}${workspaceId(az.ws)}/jobs/${name}?api-version=${API_VERSION}`;

/**
 * Step 3: submits the command job unless a job of that name exists. Sent by hand through the client's
 * pipeline (same auth): the SDK 2.1.1 drops `uri` and `mode` from job inputs (azure-sdk-for-js#29328).
 */
export async function submitJob(az: Azure, s: Settings): Promise<string> {
  const name = jobNameOf(az, s);
  return step(`job ${name}`, async () => {
    const existing = await find(() => az.client.jobs.get(...rg(az), name));
    report(az, `job ${name}`, !!existing);
    if (existing) return name;
    const response = await az.client.sendRequest(createPipelineRequest({
      url: jobUrl(az, name),
      method: "PUT",
      headers: createHttpHeaders({ "content-type": "application/json" }),
      body: JSON.stringify(jobBody(az, s)),
    }));
    if (response.status >= 300) throw new AzureError(`job ${name}: PUT ${jobUrl(az, name)} answered ${response.status}: ${armMessage(response.bodyAsText)}`);
    return name;
  });
}

/** ARM's error body as "code: message", or the raw text. */
function armMessage(text: string | null | undefined): string {
  try {
    const { error } = JSON.parse(text ?? "");
    return `${error.code}: ${error.message}`;
  } catch {
    return text ?? "(no body)";
  }
}

const TERMINAL = ["Completed", "Failed", "Canceled", "NotResponding"];

/** Step 4: polls the job until it ends, logging each status with the time elapsed; throws unless it Completed. */
export async function waitForJob(az: Azure, name: string): Promise<void> {
  const t0 = Date.now();
  let last = "";
  return step(`job ${name}`, async () => {
    for (;;) {
      const job = await find(() => az.client.jobs.get(...rg(az), name));
      if (!job && az.dryRun) return az.log(`job ${name}: would poll every ${az.pollMs / 1000} s until Completed (dry run)`);
      if (!job) throw new AzureError(`job ${name} not found in workspace ${az.ws.workspace}; submit it first`);
      const status = job.properties.status ?? "Unknown";
      if (status !== last) az.log(`job ${name}: ${status} after ${Math.round((Date.now() - t0) / 1000)} s`);
      last = status;
      if (status === "Completed") return;
      if (TERMINAL.includes(status)) {
        const studio = job.properties.services?.Studio?.endpoint;
        throw new AzureError(`job ${name} ended ${status}, expected Completed${studio ? `; logs: ${studio}` : ""}`);
      }
      await new Promise((resolve) => setTimeout(resolve, az.pollMs));
    }
  });
}

/** Step 5: registers the job's `model` output as `modelName:modelVersion`. */
export async function registerModel(az: Azure, s: Settings, jobName: string): Promise<ModelVersion> {
  const what = `model ${s.modelName}:${s.modelVersion}`;
  const modelUri = `azureml://jobs/${jobName}/outputs/model/paths/`;
  return step(what, async () => {
    const existing = await find(() => az.client.modelVersions.get(...rg(az), s.modelName, s.modelVersion));
    if (existing) sameOrThrow(what, "modelUri", existing.properties.modelUri, modelUri, "--model-version");
    report(az, what, !!existing);
    return existing ?? az.client.modelVersions.createOrUpdate(...rg(az), s.modelName, s.modelVersion, {
      properties: { modelType: "custom_model", modelUri, jobName, description: "item-based cosine neighbours (movielens-recsys)" },
    });
  });
}

/** The workspace's region, which endpoints and deployments must name. */
async function locationOf(az: Azure): Promise<string> {
  const ws = await find(() => az.client.workspaces.get(...rg(az)));
  if (ws?.location) return ws.location;
  if (az.dryRun) return "<workspace location>";
  throw new AzureError(`workspace ${az.ws.workspace} not found in resource group ${az.ws.resourceGroup}`);
}

const endpointBody = (location: string, traffic?: Record<string, number>): OnlineEndpoint => ({
  location,
  identity: { type: "SystemAssigned" },
  properties: { authMode: "Key", description: "movielens-recsys recommendations", ...(traffic ? { traffic } : {}) },
});

/** Step 6: the managed online endpoint, key auth. */
export async function createEndpoint(az: Azure, s: Settings): Promise<OnlineEndpoint> {
  const name = endpointNameOf(az, s);
  return step(`endpoint ${name}`, async () => {
    const existing = await find(() => az.client.onlineEndpoints.get(...rg(az), name));
    report(az, `endpoint ${name}`, !!existing);
    return existing ?? az.client.onlineEndpoints.beginCreateOrUpdateAndWait(...rg(az), name, endpointBody(await locationOf(az)), lro(az));
  });
}

/** Step 7: the `blue` deployment of the registered model in our environment, one Standard_E2s_v3. */
export async function createDeployment(az: Azure, s: Settings): Promise<OnlineDeployment> {
  const endpoint = endpointNameOf(az, s);
  checkEndpointName(s.deployment);
  const what = `deployment ${endpoint}/${s.deployment}`;
  return step(what, async () => {
    const existing = await find(() => az.client.onlineDeployments.get(...rg(az), endpoint, s.deployment));
    report(az, what, !!existing);
    if (existing) return existing;
    try {
      return await az.client.onlineDeployments.beginCreateOrUpdateAndWait(...rg(az), endpoint, s.deployment, {
        location: await locationOf(az),
        sku: { name: "Default", capacity: 1 },
        properties: {
          endpointComputeType: "Managed",
          instanceType: s.instanceType,
          model: `${workspaceId(az.ws)}/models/${s.modelName}/versions/${s.modelVersion}`,
          environmentId: environmentIdOf(az, s),
          scaleSettings: { scaleType: "Default" },
          requestSettings: { requestTimeout: "PT10S" },
          livenessProbe: { initialDelay: "PT10S" },
        },
      }, lro(az));
    } catch (e) {
      throw new AzureError(`${azureError(what, e).message}${await containerLogs(az, endpoint, s.deployment)}`);
    }
  });
}

/** The tail of the scoring container's log, to append to a failure ("" when there is none to get). */
async function containerLogs(az: Azure, endpoint: string, deployment: string): Promise<string> {
  try {
    const { content } = await az.client.onlineDeployments.getLogs(...rg(az), endpoint, deployment, { containerType: "InferenceServer", tail: 50 });
    return content ? `\ncontainer log (last 50 lines):\n${content}` : "";
  } catch {
    return ""; // a deployment that never started has no log; the failure itself is what to report
  }
}

/** Step 8: sends all traffic to the deployment (`blue: 100`) by re-PUTting the endpoint: its update takes only tags and identity. */
export async function setTraffic(az: Azure, s: Settings): Promise<OnlineEndpoint> {
  const name = endpointNameOf(az, s);
  const traffic = { [s.deployment]: 100 };
  return step(`endpoint ${name}`, async () => {
    const existing = await find(() => az.client.onlineEndpoints.get(...rg(az), name));
    if (!existing && !az.dryRun) throw new AzureError(`endpoint ${name} not found; create it first`);
    if (existing && JSON.stringify(existing.properties.traffic) === JSON.stringify(traffic)) {
      az.log(`endpoint ${name}: traffic already ${JSON.stringify(traffic)}`);
      return existing;
    }
    const body = endpointBody(existing?.location ?? (await locationOf(az)), traffic);
    const updated = await az.client.onlineEndpoints.beginCreateOrUpdateAndWait(...rg(az), name, body, lro(az));
    az.log(`endpoint ${name}: traffic ${JSON.stringify(traffic)}${az.dryRun ? " (dry run)" : ""}`);
    return updated;
  });
}

/** The scoring server's answer (lib/serve.ts). */
export interface Scored {
  recommendations: { movieId: number; title: string; genres: string[]; score: number }[];
  fallback: string | null;
}

/** Step 9: asks the endpoint's `blue` deployment for a user's recommendations, with the endpoint's primary key. */
export async function invoke(az: Azure, s: Settings): Promise<Scored | undefined> {
  const name = endpointNameOf(az, s);
  return step(`endpoint ${name}`, async () => {
    const endpoint = await find(() => az.client.onlineEndpoints.get(...rg(az), name));
    if (!endpoint && !az.dryRun) throw new AzureError(`endpoint ${name} not found; create it first`);
    const keys = await az.client.onlineEndpoints.listKeys(...rg(az), name);
    const url = endpoint?.properties.scoringUri ?? `https://${name}.<region>.inference.ml.azure.com${CONTAINER.score}`;
    const response = await az.http.sendRequest(createPipelineRequest({
      url,
      method: "POST",
      headers: createHttpHeaders({
        "content-type": "application/json",
        authorization: `Bearer ${keys.primaryKey ?? "<primary key>"}`,
        "azureml-model-deployment": s.deployment,
      }),
      body: JSON.stringify({ userId: s.user, n: s.n }),
    }));
    if (az.dryRun) return undefined;
    if (response.status !== 200) throw new AzureError(`endpoint ${name}: POST ${url} answered ${response.status}: ${response.bodyAsText ?? "(no body)"}`);
    return JSON.parse(response.bodyAsText!) as Scored;
  });
}

/** Recommendations as lines: rank, movieId, score, title. */
export const scoredTable = (scored: Scored) =>
  scored.recommendations.map((r, i) => `${String(i + 1).padStart(3)}. ${String(r.movieId).padStart(7)}  ${r.score.toFixed(4)}  ${r.title}`).join("\n");

/** The whole flow, each step idempotent: data, environment, job, wait, model, endpoint, deployment, traffic, invoke. */
export async function deploy(az: Azure, s: Settings): Promise<Scored | undefined> {
  await createDataAsset(az, s);
  await createEnvironment(az, s);
  const job = await submitJob(az, s);
  await waitForJob(az, job);
  await registerModel(az, s, job);
  await createEndpoint(az, s);
  await createDeployment(az, s);
  await setTraffic(az, s);
  return invoke(az, s);
}
