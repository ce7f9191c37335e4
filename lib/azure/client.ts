import { AzureMachineLearningWorkspaces } from "@azure/arm-machinelearning";
import {
  type HttpClient, type PipelineRequest, createDefaultHttpClient, createHttpHeaders, isRestError,
} from "@azure/core-rest-pipeline";
import { type AccessToken, DefaultAzureCredential, type TokenCredential } from "@azure/identity";

/** The api-version @azure/arm-machinelearning 2.1.1 speaks, and the one our hand-sent job PUT uses. */
export const API_VERSION = "2022-10-01";

/** An Azure ML workspace and the Resource Manager that serves it. */
export interface Workspace {
  subscriptionId: string;
  resourceGroup: string;
  workspace: string;
  /** ARM's base URL: https://management.azure.com, another cloud's, or a test server's. */
  armEndpoint: string;
}

/** The environment variables the azure commands and notebook 08 read, for --help. */
export const AZURE_ENV_HELP = `Workspace, from the environment:
  AZURE_SUBSCRIPTION_ID   subscription id
  AZURE_RESOURCE_GROUP    resource group of the workspace
  AZUREML_WORKSPACE       Azure ML workspace name
  AZURE_ARM_ENDPOINT      Resource Manager URL (default https://management.azure.com)
Credentials: $AZURE_ACCESS_TOKEN if set (a bearer token for ARM, e.g. from
  az account get-access-token --query accessToken -o tsv), else DefaultAzureCredential
  (az login, managed identity, AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, ...).
Step defaults: AZUREML_DATA (--data), AZUREML_IMAGE (--image; without it the image is built in
  Azure from deploy/Dockerfile), AZUREML_COMPUTE (--compute), AZUREML_ENDPOINT (--endpoint).
The build context goes to the workspace's default datastore with the datastore's own credentials
  (or AZURE_STORAGE_CONNECTION_STRING when it names the datastore's account).
With --dry-run no credential is needed, and missing variables take example values.`;

const REQUIRED = ["AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE"] as const;

/** Example values a dry run uses for whatever the environment does not say. */
const EXAMPLE_WORKSPACE: Workspace = {
  subscriptionId: "00000000-0000-0000-0000-000000000000",
  resourceGroup: "movielens-rg",
  workspace: "movielens-ws",
  armEndpoint: "https://management.azure.com",
};

export class AzureError extends Error {
  override name = "AzureError";
}

/** True when the environment names a workspace (all of AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE). */
export const isConfigured = (env: NodeJS.ProcessEnv = process.env) => REQUIRED.every((name) => env[name]);

/** The workspace the environment names; throws listing what is missing. */
export function workspaceFromEnv(env: NodeJS.ProcessEnv = process.env): Workspace {
  const missing = REQUIRED.filter((name) => !env[name]);
  if (missing.length) throw new AzureError(`expected ${REQUIRED.join(", ")} in the environment, missing ${missing.join(", ")}`);
  return {
    subscriptionId: env.AZURE_SUBSCRIPTION_ID!,
    resourceGroup: env.AZURE_RESOURCE_GROUP!,
    workspace: env.AZUREML_WORKSPACE!,
    armEndpoint: (env.AZURE_ARM_ENDPOINT ?? EXAMPLE_WORKSPACE.armEndpoint).replace(/\/+$/, ""),
  };
}

/** The workspace's ARM id, the `W` every resource path starts with. */
export const workspaceId = (ws: Workspace) =>
  `/subscriptions/${ws.subscriptionId}/resourceGroups/${ws.resourceGroup}/providers/Microsoft.MachineLearningServices/workspaces/${ws.workspace}`;

/** What every step needs: the workspace, an SDK client, a plain HTTP client (for scoring), and how to report. */
export interface Azure {
  ws: Workspace;
  client: AzureMachineLearningWorkspaces;
  http: HttpClient;
  dryRun: boolean;
  /** Between polls of a job or a long-running operation. */
  pollMs: number;
  /** How long each wait (job, long-running operation) may take before the step gives up. */
  timeoutMs: number;
  /** Aborted on Ctrl-C: every wait stops, and no further request starts. */
  signal: AbortSignal;
  log: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

export interface ConnectOptions {
  /** Print each request instead of sending it: GETs are answered 404 (as if nothing existed yet), writes echo their body. */
  dryRun?: boolean;
  pollMs?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** The default of `timeoutMs`: deployments take 10+ minutes, a job builds its image first. */
export const DEFAULT_TIMEOUT_MINUTES = 60;

/** Connects to the workspace the environment names (example values in a dry run when it names none). */
export function connect({
  dryRun = false, pollMs = 15_000, timeoutMs = DEFAULT_TIMEOUT_MINUTES * 60_000, signal = new AbortController().signal, log = console.log, env = process.env,
}: ConnectOptions = {}): Azure {
  const ws = dryRun && !isConfigured(env) ? { ...EXAMPLE_WORKSPACE, armEndpoint: env.AZURE_ARM_ENDPOINT ?? EXAMPLE_WORKSPACE.armEndpoint } : workspaceFromEnv(env);
  const http = dryRun ? printingHttpClient(log) : createDefaultHttpClient();
  const client = new AzureMachineLearningWorkspaces(dryRun ? staticToken("dry-run") : credentialFrom(env), ws.subscriptionId, {
    endpoint: ws.armEndpoint,
    credentialScopes: ["https://management.azure.com/.default"],
    httpClient: http,
  });
  return { ws, client, http, dryRun, pollMs, timeoutMs, signal, log, env };
}

function credentialFrom(env: NodeJS.ProcessEnv): TokenCredential {
  return env.AZURE_ACCESS_TOKEN ? staticToken(env.AZURE_ACCESS_TOKEN) : new DefaultAzureCredential();
}

const staticToken = (token: string): TokenCredential => ({
  getToken: async (): Promise<AccessToken> => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }),
});

/** A request as a dry run prints it: method and URL, then the JSON body. */
export function formatRequest(method: string, url: string, body?: unknown): string {
  const text = typeof body === "string" ? JSON.stringify(JSON.parse(body), null, 2) : body === undefined ? "" : JSON.stringify(body, null, 2);
  return `${method} ${url}${text ? `\n${text}` : ""}\n`;
}

/** An HttpClient that prints each request and answers it locally, so the SDK's calls run to completion. */
function printingHttpClient(log: (line: string) => void): HttpClient {
  return {
    async sendRequest(request: PipelineRequest) {
      const body = typeof request.body === "string" && request.body ? request.body : undefined;
      log(formatRequest(request.method, request.url, body));
      const headers = createHttpHeaders({ "content-type": "application/json" });
      if (request.method === "GET") {
        return { request, headers, status: 404, bodyAsText: JSON.stringify({ error: { code: "DryRun", message: "dry run: not sent" } }) };
      }
      const echo = body ? JSON.parse(body) : {};
      if (echo.properties) echo.properties.provisioningState = "Succeeded";
      return { request, headers, status: 200, bodyAsText: JSON.stringify(echo) };
    },
  };
}

/** True for an ARM 404 (what "get before create" looks for). */
export const isNotFound = (e: unknown) => isRestError(e) && e.statusCode === 404;

/** Azure's own error text, prefixed with the step and the request that failed. */
export function azureError(step: string, e: unknown): Error {
  if (e instanceof AzureError) return e;
  if (isRestError(e)) {
    const request = e.request ? `${e.request.method} ${e.request.url} ` : "";
    return new AzureError(`${step}: ${request}answered ${e.statusCode ?? "no status"}${e.code ? ` ${e.code}` : ""}: ${e.message}`);
  }
  return new AzureError(`${step}: ${(e as Error).message}`);
}
