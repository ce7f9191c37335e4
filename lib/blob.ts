import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { DefaultAzureCredential } from "@azure/identity";
import { type BlobClient, BlobServiceClient, RestError } from "@azure/storage-blob";
import { MOVIELENS_FILES } from "./download";
import type { Progress } from "./ingest";
import { progressReporter } from "./progress";
import { cacheRoot } from "./synthetic";

/** A folder of blobs: the account's URL, a container and a prefix (no trailing slash), and a SAS if the URL carried one. */
export interface BlobLocation {
  accountUrl: string;
  account: string;
  container: string;
  prefix: string;
  sas?: string;
}

export class BlobDownloadError extends Error {
  override name = "BlobDownloadError";
}

/** The forms `train --data` takes for Blob Storage, for --help. */
export const BLOB_LOCATION_HELP = `A Blob location is https://<account>.blob.core.windows.net/<container>/<prefix>[?<SAS>],
az://<account>/<container>/<prefix> (the same, shorter), or, for Azurite and other path-style
endpoints, http(s)://<host>:<port>/<account>/<container>/<prefix>. ratings.csv and movies.csv
under the prefix are downloaded once, into blob/ under $MOVIELENS_CACHE (default .cache/).
Credentials, first that applies: a SAS in the location; $AZURE_STORAGE_SAS_TOKEN;
$AZURE_STORAGE_CONNECTION_STRING (for the same account); else DefaultAzureCredential
(az login, managed identity, AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, ...).`;

/** True for the strings `parseBlobLocation` takes rather than a local directory. */
export const isBlobLocation = (data: string) => /^(https?|az):\/\//i.test(data);

/** Parses a Blob location (see BLOB_LOCATION_HELP). */
export function parseBlobLocation(location: string): BlobLocation {
  const url = new URL(location.replace(/^az:\/\/([^/]+)/i, "https://$1.blob.core.windows.net"));
  const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  const pathStyle = !/\.blob\./i.test(url.hostname);
  const account = pathStyle ? parts.shift() : url.hostname.split(".")[0];
  const container = parts.shift();
  if (!account || !container) {
    throw new RangeError(`expected a Blob location like https://<account>.blob.core.windows.net/<container>/<prefix> or az://<account>/<container>/<prefix>, got "${redact(location)}"`);
  }
  const bad = [url.host, account, container, ...parts].flatMap((part) => part.split("/")).find((segment) => !plainSegment(segment));
  if (bad !== undefined) {
    throw new RangeError(`Blob location "${redact(location)}": the segment ${JSON.stringify(bad)} is not allowed (no empty, "." or ".." segments, backslashes or control characters)`);
  }
  return {
    accountUrl: pathStyle ? `${url.origin}/${account}` : url.origin,
    account,
    container,
    prefix: parts.join("/"),
    sas: url.search.length > 1 ? url.search.slice(1) : undefined,
  };
}

/** The location as a URL without its SAS, fit for logs and model.json. */
export const describeLocation = (l: BlobLocation) => [l.accountUrl, l.container, l.prefix].filter(Boolean).join("/");

const redact = (s: string) => s.replace(/\?.*$/, "?<SAS>");

/** A path segment that names a folder inside its parent, on any OS: a cache path built of them stays in the cache. */
const plainSegment = (s: string) => s !== "" && s !== "." && s !== ".." && !/[\\\x00-\x1f]/.test(s);

/** The cache folder of a location, refused when any part of it would lead outside <cacheRoot>/blob. */
function cacheDirOf(location: BlobLocation): string {
  const root = path.join(cacheRoot(), "blob");
  const segments = [new URL(location.accountUrl).host.replace(/:/g, "_"), location.account, location.container, ...location.prefix.split("/").filter(Boolean)];
  const bad = segments.find((segment) => !plainSegment(segment) || segment.includes("/"));
  if (bad !== undefined) throw new BlobDownloadError(`${describeLocation(location)}: the segment ${JSON.stringify(bad)} would lead outside the cache folder ${root}`);
  return path.join(root, ...segments);
}

/** A service client for the location, with the first credential that applies (see BLOB_LOCATION_HELP). */
export function blobService(location: BlobLocation, env: NodeJS.ProcessEnv = process.env): BlobServiceClient {
  const sas = location.sas ?? env.AZURE_STORAGE_SAS_TOKEN?.replace(/^\?/, "");
  if (sas) return new BlobServiceClient(`${location.accountUrl}?${sas}`);
  if (env.AZURE_STORAGE_CONNECTION_STRING) {
    const service = BlobServiceClient.fromConnectionString(env.AZURE_STORAGE_CONNECTION_STRING);
    if (service.accountName !== location.account) {
      throw new BlobDownloadError(`AZURE_STORAGE_CONNECTION_STRING is for account "${service.accountName}", expected the location's account "${location.account}"`);
    }
    return service;
  }
  return new BlobServiceClient(location.accountUrl, new DefaultAzureCredential());
}

export interface FetchBlobsOptions {
  /** Cache directory to download into; default <cacheRoot>/blob/<host>/<account>/<container>/<prefix>. */
  dir?: string;
  files?: string[];
  /** Range requests resuming a file after dropped connections. */
  retries?: number;
  onProgress?: (file: string, done: number, total: number) => void;
  service?: BlobServiceClient;
}

/**
 * Downloads `files` under the location into a local directory and returns it. Each file streams into
 * `<file>.partial-<pid>`, resumes from its offset when the connection drops, must reach the blob's size,
 * and only then is renamed into place beside `<file>.etag`; a file whose size and ETag match is kept.
 */
export async function fetchBlobs(location: BlobLocation, options: FetchBlobsOptions = {}): Promise<string> {
  const { files = MOVIELENS_FILES, retries = 5, onProgress } = options;
  const dir = options.dir ?? cacheDirOf(location);
  const container = (options.service ?? blobService(location)).getContainerClient(location.container);
  await mkdir(dir, { recursive: true });
  for (const file of files) {
    const where = `${describeLocation(location)}/${file}`;
    if (!plainSegment(file) || file.includes("/")) throw new BlobDownloadError(`${where}: the file name ${JSON.stringify(file)} is not a plain name in ${dir}`);
    const blob = container.getBlobClient(location.prefix ? `${location.prefix}/${file}` : file);
    const props = await blob.getProperties().catch((e) => { throw blobError(e, where); });
    const total = props.contentLength ?? 0;
    const target = path.join(dir, file);
    if (await isComplete(target, total, props.etag!)) continue;
    const partial = `${target}.partial-${process.pid}`;
    await rm(partial, { force: true });
    try {
      await resumableDownload(blob, partial, props.etag!, total, retries, (done) => onProgress?.(file, done, total));
      const got = (await stat(partial)).size;
      if (got !== total) throw new BlobDownloadError(`${where}: expected ${total} bytes, got ${got}`);
      await rename(partial, target);
      await writeFile(`${target}.etag`, props.etag!);
      onProgress?.(file, total, total);
    } catch (e) {
      await rm(partial, { force: true });
      throw blobError(e, where);
    }
  }
  return dir;
}

/**
 * Appends the blob to `partial` from the size it already has, again after each dropped connection.
 * Ours, not the SDK's maxRetryRequests: on Node 20 a dropped response emits "aborted", which the SDK
 * takes for a cancellation and does not retry. The ETag pins every range to one version of the blob.
 */
async function resumableDownload(blob: BlobClient, partial: string, etag: string, total: number, retries: number, onProgress: (done: number) => void): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const offset = await stat(partial).then((s) => s.size, () => 0);
    try {
      const response = await blob.download(offset, undefined, {
        conditions: { ifMatch: etag },
        maxRetryRequests: 0,
        onProgress: ({ loadedBytes }) => onProgress(offset + loadedBytes),
      });
      await pipeline(response.readableStreamBody!, createWriteStream(partial, { flags: "a" }));
      return;
    } catch (e) {
      if (e instanceof RestError && e.statusCode !== undefined && e.statusCode < 500) throw e;
      if (attempt >= retries) {
        const got = await stat(partial).then((s) => s.size, () => 0);
        throw new BlobDownloadError(`connection lost at byte ${got} of ${total} after ${attempt} resumed attempts: ${(e as Error).message}`);
      }
    }
  }
}

async function isComplete(file: string, size: number, etag: string): Promise<boolean> {
  try {
    return (await stat(file)).size === size && (await readFile(`${file}.etag`, "utf8")) === etag;
  } catch {
    return false;
  }
}

function blobError(e: unknown, where: string): Error {
  if (e instanceof BlobDownloadError) return e.message.startsWith(where) ? e : new BlobDownloadError(`${where}: ${e.message}`);
  if (e instanceof RestError) {
    const what = e.statusCode === 404 ? "blob not found" : `HTTP ${e.statusCode ?? "error"} ${e.code ?? ""}`.trim();
    return new BlobDownloadError(`${where}: ${what}${e.statusCode === 404 ? "" : `: ${e.message.split("\n")[0]}`}`);
  }
  return new BlobDownloadError(`${where}: ${(e as Error).message}`);
}

/** Downloads a MovieLens folder from Blob Storage with progress per file; returns the local directory. */
export async function fetchMovieLensBlobs(location: string): Promise<string> {
  const progress = progressReporter();
  const files = new Map<string, Progress>();
  return fetchBlobs(parseBlobLocation(location), {
    onProgress: (file, done, total) => {
      if (!files.has(file)) files.set(file, progress(file, "bytes"));
      files.get(file)!(done, total);
    },
  });
}
