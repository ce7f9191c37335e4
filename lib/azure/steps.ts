import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type {
  AzureBlobDatastore, DataVersionBase, EnvironmentVersion, ModelVersion, OnlineDeployment, OnlineEndpoint,
} from "@azure/arm-machinelearning";
import { createHttpHeaders, createPipelineRequest } from "@azure/core-rest-pipeline";
import { DefaultAzureCredential } from "@azure/identity";
import { BlobServiceClient, type ContainerClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { describeLocation, isBlobLocation, parseBlobLocation } from "../blob";
import { API_VERSION, type Azure, AzureError, type Workspace, azureError, isNotFound, workspaceId } from "./client";
import { type BuildContext, buildContext, contextFolder, uploadContext } from "./context";

/** The port, routes and server processes of the scoring server in deploy/Dockerfile's CMD (lib/serve.ts). */
export const CONTAINER = { port: 5001, live: "/live", ready: "/ready", score: "/score", workers: 2 };
/** The folder under the job's `model` output that `train` writes the model to (a folder it can rename into place). */
export const MODEL_PATH = "model";
/** What the command job runs in the image (deploy/job.yml says the same). */
export const TRAIN_COMMAND = `node /app/dist/lib/cli.js train --data \${{inputs.data}} --model-dir \${{outputs.model}}/${MODEL_PATH}`;
export const INSTANCE_TYPE = "Standard_E2s_v3";

/** Everything the flow creates, by name and version; `settingsFrom` fills the defaults. */
export interface Settings {
  /** Where the MovieLens folder is: a Blob location, or azureml://datastores/<ds>/paths/<path>. */
  data?: string;
  dataName: string;
  dataVersion: string;
  /** A prebuilt image of deploy/Dockerfile in a registry the workspace can pull from; without it Azure ML builds one from the build context. */
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

/**
 * Runs a wait (a job's, or a long-running operation's, given `lro` to pass to the SDK) that stops at
 * --timeout or Ctrl-C; either way what Azure is doing goes on, and running the step again resumes waiting.
 */
async function waiting<T>(az: Azure, what: string, wait: (lro: { updateIntervalInMs: number; abortSignal: AbortSignal }) => Promise<T>): Promise<T> {
  // A plain timer, not AbortSignal.timeout: that one's timer may be collected unseen while the wait holds only the composite signal.
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), az.timeoutMs);
  const onInterrupt = () => stop.abort();
  az.signal.addEventListener("abort", onInterrupt, { once: true });
  try {
    if (az.signal.aborted) stop.abort();
    return await wait({ updateIntervalInMs: az.pollMs, abortSignal: stop.signal });
  } catch (e) {
    if (!stop.signal.aborted) throw e;
    throw new AzureError(az.signal.aborted
      ? `${what}: interrupted (Ctrl-C) while waiting; it goes on in Azure, run the step again to resume waiting`
      : `${what}: gave up waiting after ${az.timeoutMs / 60_000} min (--timeout); it goes on in Azure, run the step again to wait longer`);
  } finally {
    clearTimeout(timer);
    az.signal.removeEventListener("abort", onInterrupt);
  }
}

/** Runs `get`; undefined when ARM answers 404. */
async function find<T>(get: () => Promise<T>): Promise<T | undefined> {
  try {
    return await get();
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** Runs a step (none starts after Ctrl-C), turning any failure into an AzureError that carries Azure's own text. */
async function step<T>(az: Azure, name: string, run: () => Promise<T>): Promise<T> {
  if (az.signal.aborted) throw new AzureError(`${name}: not started, interrupted (Ctrl-C)`);
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
  return step(az, what, async () => {
    const existing = await find(() => az.client.dataVersions.get(...rg(az), s.dataName, s.dataVersion));
    if (existing) sameOrThrow(what, "dataUri", existing.properties.dataUri, dataUri, "--data-version");
    report(az, what, !!existing);
    return existing ?? az.client.dataVersions.createOrUpdate(...rg(az), s.dataName, s.dataVersion, {
      properties: { dataType: "uri_folder", dataUri, description: "MovieLens ratings.csv and movies.csv" },
    });
  });
}

/** The workspace's default datastore: the Blob container Azure ML's own SDK uploads build contexts to. */
interface Datastore { name: string; account: string; container: string; accountUrl: string; credentials: string }

/** The default datastore, from ARM (in a dry run, placeholders: a dry run cannot know it). */
async function defaultDatastore(az: Azure): Promise<Datastore> {
  try {
    for await (const ds of az.client.datastores.list(...rg(az), { isDefault: true, abortSignal: az.signal })) {
      const p = ds.properties as AzureBlobDatastore;
      if (p.datastoreType !== "AzureBlob" || !p.accountName || !p.containerName) {
        throw new AzureError(`the default datastore ${ds.name} is ${p.datastoreType}, expected an AzureBlob datastore with an account and a container`);
      }
      const [protocol, endpoint] = [p.protocol ?? "https", p.endpoint ?? "core.windows.net"];
      if (!/^https?$/.test(protocol) || !/^[a-z0-9]{3,24}$/.test(p.accountName) || !/^[a-z0-9.-]+$/i.test(endpoint)) {
        throw new AzureError(`the default datastore ${ds.name} names account "${p.accountName}", endpoint "${endpoint}", protocol "${protocol}": expected a storage account name, a host suffix and http(s)`);
      }
      const accountUrl = `${protocol}://${p.accountName}.blob.${endpoint}`;
      return { name: ds.name!, account: p.accountName, container: p.containerName, accountUrl, credentials: p.credentials.credentialsType };
    }
  } catch (e) {
    if (!(az.dryRun && isNotFound(e))) throw e;
  }
  if (az.dryRun) return { name: "<default datastore>", account: "<account>", container: "<container>", accountUrl: "https://<account>.blob.core.windows.net", credentials: "None" };
  throw new AzureError(`workspace ${az.ws.workspace} has no default datastore`);
}

/**
 * The datastore's container with the datastore's own secret (an account key or a SAS), else the signed-in identity;
 * AZURE_STORAGE_CONNECTION_STRING instead when it is for the datastore's account (Azurite in the tests).
 */
async function datastoreContainer(az: Azure, ds: Datastore): Promise<ContainerClient> {
  const options = { retryOptions: { maxTries: 4, tryTimeoutInMs: 60_000 } }; // a stalled upload is retried, not waited on forever
  const connection = az.env.AZURE_STORAGE_CONNECTION_STRING;
  if (connection && BlobServiceClient.fromConnectionString(connection).accountName === ds.account) {
    return BlobServiceClient.fromConnectionString(connection, options).getContainerClient(ds.container);
  }
  if (ds.credentials === "AccountKey" || ds.credentials === "Sas") {
    const secrets = await az.client.datastores.listSecrets(...rg(az), ds.name, { abortSignal: az.signal });
    if (secrets.secretsType === "AccountKey" && "key" in secrets && secrets.key) {
      return new BlobServiceClient(ds.accountUrl, new StorageSharedKeyCredential(ds.account, secrets.key), options).getContainerClient(ds.container);
    }
    if (secrets.secretsType === "Sas" && "sasToken" in secrets && secrets.sasToken) {
      return new BlobServiceClient(`${ds.accountUrl}?${secrets.sasToken.replace(/^\?/, "")}`, undefined, options).getContainerClient(ds.container);
    }
  }
  return new BlobServiceClient(ds.accountUrl, new DefaultAzureCredential(), options).getContainerClient(ds.container);
}

/** The environment's ARM id. */
const environmentIdOf = (az: Azure, s: Settings) => `${workspaceId(az.ws)}/environments/${s.environmentName}/versions/${s.environmentVersion}`;

/**
 * Step 2: the environment `environmentName:environmentVersion`, with the scoring server's routes. From --image when
 * given; else from deploy/Dockerfile's build context, uploaded to the default datastore under LocalUpload/<hash>/context/
 * (as Azure ML's own SDK uploads one), which Azure ML builds into the workspace's registry when a job first uses it.
 */
export async function createImage(az: Azure, s: Settings): Promise<EnvironmentVersion> {
  const what = `environment ${s.environmentName}:${s.environmentVersion}`;
  const route = (path: string) => ({ path, port: CONTAINER.port });
  return step(az, what, async () => {
    let context: BuildContext | undefined, datastore: Datastore | undefined;
    if (!s.image) {
      context = await buildContext();
      datastore = await defaultDatastore(az);
    }
    const source = context && datastore
      ? { build: { contextUri: `${datastore.accountUrl}/${datastore.container}/${contextFolder(context)}`, dockerfilePath: context.dockerfile } }
      : { image: s.image };
    const existing = await find(() => az.client.environmentVersions.get(...rg(az), s.environmentName, s.environmentVersion));
    if (existing && source.build) sameOrThrow(what, "build context", existing.properties.build?.contextUri, source.build.contextUri, "--environment-version");
    if (existing && source.image) sameOrThrow(what, "image", existing.properties.image, source.image, "--environment-version");
    if (context && datastore && !existing) {
      const where = `${datastore.accountUrl}/${datastore.container}/${contextFolder(context)}`;
      const summary = `build context: ${context.files.length} files, ${(context.bytes / 1024).toFixed(0)} KiB (${context.files.join(" ")})`;
      if (az.dryRun) az.log(`${summary}\nwould be uploaded to ${where} (datastore ${datastore.name}; dry run)\n`);
      else {
        await uploadContext(await datastoreContainer(az, datastore), context, az.signal);
        az.log(`${summary}\nuploaded to ${where}`);
      }
    }
    report(az, what, !!existing);
    return existing ?? az.client.environmentVersions.createOrUpdate(...rg(az), s.environmentName, s.environmentVersion, {
      properties: {
        ...source,
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
      // The data asset's bare ARM id, as Azure ML's own SDK sends it (not azureml:/subscriptions/...).
      inputs: { data: { jobInputType: "uri_folder", uri: `${workspaceId(az.ws)}/data/${s.dataName}/versions/${s.dataVersion}`, mode: "ReadOnlyMount" } },
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
  return step(az, `job ${name}`, async () => {
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

/** The statuses a job does not leave. NotResponding is not one: the job can come back from it. */
const FINAL = ["Completed", "Failed", "Canceled"];

/** Step 4: polls the job until it ends, logging each status with the time elapsed; throws unless it Completed. */
export async function waitForJob(az: Azure, name: string): Promise<void> {
  const t0 = Date.now();
  let last = "";
  return step(az, `job ${name}`, () => waiting(az, `job ${name}`, async ({ abortSignal }) => {
    for (;;) {
      const job = await find(() => az.client.jobs.get(...rg(az), name, { abortSignal }));
      if (!job && az.dryRun) return az.log(`job ${name}: would poll every ${az.pollMs / 1000} s until Completed (dry run)`);
      if (!job) throw new AzureError(`job ${name} not found in workspace ${az.ws.workspace}; submit it first`);
      const status = job.properties.status ?? "Unknown";
      if (status !== last) az.log(`job ${name}: ${status} after ${Math.round((Date.now() - t0) / 1000)} s${status === "NotResponding" ? " (still waiting: a job can come back from it)" : ""}`);
      last = status;
      if (status === "Completed") return;
      if (FINAL.includes(status)) {
        const studio = job.properties.services?.Studio?.endpoint;
        throw new AzureError(`job ${name} ended ${status}, expected Completed${studio ? `; logs: ${studio}` : ""}`);
      }
      await sleep(az.pollMs, undefined, { signal: abortSignal });
    }
  }));
}

/**
 * The registered model's URI: the documented form azureml://jobs/<job>/outputs/<output>/paths/<path>/, with the
 * folder `train --model-dir \${{outputs.model}}/model` writes, so $AZUREML_MODEL_DIR holds model.json one level down.
 */
export const modelUriOf = (jobName: string) => `azureml://jobs/${jobName}/outputs/model/paths/${MODEL_PATH}/`;

/** Step 5: registers the model the job wrote under its `model` output as `modelName:modelVersion`. */
export async function registerModel(az: Azure, s: Settings, jobName: string): Promise<ModelVersion> {
  const what = `model ${s.modelName}:${s.modelVersion}`;
  const modelUri = modelUriOf(jobName);
  return step(az, what, async () => {
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
  return step(az, `endpoint ${name}`, async () => {
    const existing = await find(() => az.client.onlineEndpoints.get(...rg(az), name));
    report(az, `endpoint ${name}`, !!existing);
    if (existing) return existing;
    const body = endpointBody(await locationOf(az));
    return waiting(az, `endpoint ${name}`, (lro) => az.client.onlineEndpoints.beginCreateOrUpdateAndWait(...rg(az), name, body, lro));
  });
}

/**
 * Step 7: the `blue` deployment of the registered model in our environment, one Standard_E2s_v3, taking as many
 * requests at once as the container has server processes (Azure answers 429 past twice that many pending).
 */
export async function createDeployment(az: Azure, s: Settings): Promise<OnlineDeployment> {
  const endpoint = endpointNameOf(az, s);
  checkEndpointName(s.deployment);
  const what = `deployment ${endpoint}/${s.deployment}`;
  return step(az, what, async () => {
    const existing = await find(() => az.client.onlineDeployments.get(...rg(az), endpoint, s.deployment));
    report(az, what, !!existing);
    if (existing) return existing;
    const location = await locationOf(az);
    try {
      return await waiting(az, what, (lro) => az.client.onlineDeployments.beginCreateOrUpdateAndWait(...rg(az), endpoint, s.deployment, {
        location,
        sku: { name: "Default", capacity: 1 },
        properties: {
          endpointComputeType: "Managed",
          instanceType: s.instanceType,
          model: `${workspaceId(az.ws)}/models/${s.modelName}/versions/${s.modelVersion}`,
          environmentId: environmentIdOf(az, s),
          scaleSettings: { scaleType: "Default" },
          requestSettings: { requestTimeout: "PT10S", maxConcurrentRequestsPerInstance: CONTAINER.workers },
          livenessProbe: { initialDelay: "PT10S" },
        },
      }, lro));
    } catch (e) {
      throw new AzureError(`${azureError(what, e).message}${az.signal.aborted ? "" : await containerLogs(az, endpoint, s.deployment)}`);
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
  return step(az, `endpoint ${name}`, async () => {
    const existing = await find(() => az.client.onlineEndpoints.get(...rg(az), name));
    if (!existing && !az.dryRun) throw new AzureError(`endpoint ${name} not found; create it first`);
    if (existing && JSON.stringify(existing.properties.traffic) === JSON.stringify(traffic)) {
      az.log(`endpoint ${name}: traffic already ${JSON.stringify(traffic)}`);
      return existing;
    }
    const body = endpointBody(existing?.location ?? (await locationOf(az)), traffic);
    const updated = await waiting(az, `endpoint ${name}`, (lro) => az.client.onlineEndpoints.beginCreateOrUpdateAndWait(...rg(az), name, body, lro));
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
  return step(az, `endpoint ${name}`, async () => {
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
    // Azure answers 424 for any non-200 of the container, whose own status and reason are in these headers.
    const container = response.status === 424 ? ` (the container answered ${response.headers.get("ms-azureml-model-error-statuscode") ?? "?"}: ${response.headers.get("ms-azureml-model-error-reason") ?? "?"})` : "";
    if (response.status !== 200) throw new AzureError(`endpoint ${name}: POST ${url} answered ${response.status}${container}: ${response.bodyAsText ?? "(no body)"}`);
    return JSON.parse(response.bodyAsText!) as Scored;
  });
}

/** Recommendations as lines: rank, movieId, score, title. */
export const scoredTable = (scored: Scored) =>
  scored.recommendations.map((r, i) => `${String(i + 1).padStart(3)}. ${String(r.movieId).padStart(7)}  ${r.score.toFixed(4)}  ${r.title}`).join("\n");

/** The whole flow, each step idempotent: data, image (environment), job, wait, model, endpoint, deployment, traffic, invoke. */
export async function deploy(az: Azure, s: Settings): Promise<Scored | undefined> {
  await createDataAsset(az, s);
  await createImage(az, s);
  const job = await submitJob(az, s);
  await waitForJob(az, job);
  await registerModel(az, s, job);
  await createEndpoint(az, s);
  await createDeployment(az, s);
  await setTraffic(az, s);
  return invoke(az, s);
}

/** What `deleteEndpoint` is about to delete, for the confirmation. */
export interface Teardown { endpoint: string; deployments: string[]; models: string[] }

/**
 * Teardown: deletes the endpoint, its deployments with it (a managed endpoint bills until deleted), and with
 * `models` every version of the registered model, once `confirm` agrees. False when there was nothing to delete
 * or `confirm` said no. A dry run prints the requests, as if the endpoint existed.
 */
export async function deleteEndpoint(az: Azure, s: Settings, { models = false, confirm }: { models?: boolean; confirm: (t: Teardown) => Promise<boolean> }): Promise<boolean> {
  const name = endpointNameOf(az, s);
  return step(az, `endpoint ${name}`, async () => {
    const existing = await find(() => az.client.onlineEndpoints.get(...rg(az), name));
    const list = async <T>(items: () => AsyncIterable<T>): Promise<T[] | undefined> => find(async () => {
      const all: T[] = [];
      for await (const item of items()) all.push(item);
      return all;
    });
    const deployments = existing ? (await list(() => az.client.onlineDeployments.list(...rg(az), name)))?.map((d) => d.name!) ?? [] : [s.deployment];
    const versions = !models ? [] : (await list(() => az.client.modelVersions.list(...rg(az), s.modelName)))?.map((v) => v.name!) ?? (az.dryRun ? [s.modelVersion] : []);
    if (!existing && !az.dryRun && versions.length === 0) {
      az.log(`endpoint ${name}: not found, nothing to delete${models ? ` (nor any version of model ${s.modelName})` : ""}`);
      return false;
    }
    const teardown = { endpoint: existing || az.dryRun ? name : "", deployments: existing || az.dryRun ? deployments : [], models: versions.map((v) => `${s.modelName}:${v}`) };
    if (!(await confirm(teardown))) {
      az.log("nothing deleted");
      return false;
    }
    if (teardown.endpoint) {
      await waiting(az, `endpoint ${name}`, (lro) => az.client.onlineEndpoints.beginDeleteAndWait(...rg(az), name, lro));
      az.log(`endpoint ${name}${deployments.length ? ` and deployment ${deployments.join(", ")}` : ""}: ${az.dryRun ? "would be deleted (dry run)" : "deleted"}`);
    }
    for (const version of versions) {
      await az.client.modelVersions.delete(...rg(az), s.modelName, version, { abortSignal: az.signal });
      az.log(`model ${s.modelName}:${version}: ${az.dryRun ? "would be deleted (dry run)" : "deleted"}`);
    }
    return true;
  });
}
