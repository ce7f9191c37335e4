import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import { loadModel, type Model, saveModel } from "../lib/model-io";
import { historyOf, recommendForMovies, recommendForUser, similarTo } from "../lib/recommend";
import { BODY_LIMIT, buildApp, findModelDir, MAX_DEPTH, SHUTDOWN_GRACE } from "../lib/serve";
import { train } from "../lib/train";

const cli = path.join(__dirname, "..", "lib", "cli.js");
const NO_LIKES_USER = 500;

let tmp: string;
let modelDir: string;
let model: Model;
let app: FastifyInstance;
let base: string;

/** 30 movies, 60 users rating about 60% of them, and one user who disliked everything. */
async function writeFixture(dir: string): Promise<void> {
  const movies = ["movieId,title,genres"];
  for (let m = 1; m <= 30; m++) movies.push(`${m},"Movie ${m}, ""The"" (${1970 + m})",${m === 30 ? "(no genres listed)" : m % 2 ? "Drama|Comedy" : "Action"}`);
  const ratings = ["userId,movieId,rating,timestamp"];
  for (let u = 1; u <= 60; u++) {
    for (let m = 1; m <= 30; m++) if ((u * 7 + m * 3) % 5 > 1) ratings.push(`${u},${m},${1 + ((u + 2 * m) % 5)},0`);
  }
  for (let m = 1; m <= 5; m++) ratings.push(`${NO_LIKES_USER},${m},1.0,0`);
  await writeFile(path.join(dir, "movies.csv"), movies.join("\n") + "\n");
  await writeFile(path.join(dir, "ratings.csv"), ratings.join("\n") + "\n");
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "serve-test-"));
  await writeFixture(tmp);
  modelDir = path.join(tmp, "azureml-models", "movielens_recommender", "1");
  await saveModel(modelDir, await train(tmp));
  model = await loadModel(modelDir);
  app = buildApp(() => model, { logger: false });
  await app.listen({ host: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});

after(async () => {
  await app.close();
  await rm(tmp, { recursive: true, force: true });
});

async function post(body: unknown, contentType = "application/json", url = base): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/score`, {
    method: "POST", headers: { "content-type": contentType }, body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

const plain = (x: unknown) => JSON.parse(JSON.stringify(x));

test("/live and /ready answer 200 once the model is loaded", async () => {
  for (const route of ["/live", "/ready"]) assert.equal((await fetch(`${base}${route}`)).status, 200);
});

test("before the model is loaded: /live 200, /ready and /score 503, then both 200", async () => {
  let loaded: Model | undefined;
  const early = buildApp(() => loaded, { logger: false });
  await early.listen({ host: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${(early.server.address() as { port: number }).port}`;
  try {
    assert.equal((await fetch(`${url}/live`)).status, 200);
    const ready = await fetch(`${url}/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { error: "model not loaded yet" });
    assert.equal((await post({ userId: 1 }, undefined, url)).status, 503);
    loaded = model;
    assert.equal((await fetch(`${url}/ready`)).status, 200);
    assert.deepEqual(await post({ userId: 1 }, undefined, url), { status: 200, json: plain(recommendForUser(model, 1, 10)) });
  } finally {
    await early.close();
  }
});

test("userId, movieIds and similarTo answer as recommend --user, recommend --movies and similar; n defaults to 10", async () => {
  const user = await post({ userId: 7 });
  assert.deepEqual(user, { status: 200, json: plain(recommendForUser(model, 7, 10)) });
  assert.equal(user.json.recommendations.length, 10);
  assert.equal(user.json.fallback, null);
  assert.deepEqual(Object.keys(user.json.recommendations[0]), ["movieId", "title", "genres", "score"]);
  assert.deepEqual(await post({ movieIds: [1, 5, 9], n: 4 }), { status: 200, json: plain(recommendForMovies(model, [1, 5, 9], 4)) });
  const similar = await post({ similarTo: 30, n: 3 });
  assert.deepEqual(similar, { status: 200, json: plain(similarTo(model, 30, 3)) });
  assert.equal(similar.json.recommendations.length, 3);
  assert.equal((await post({ similarTo: 2 })).json.recommendations.length, 10);
});

test("a known user plus movies just liked: the served refit model's history joins them, none of either recommended", async () => {
  assert.equal(model.manifest.fit, "all");
  const { rated } = historyOf(model, 7);
  const unseen = [...model.movies.movieId].filter((_, m) => !rated.includes(m)).slice(0, 2);
  const both = await post({ userId: 7, movieIds: unseen, n: 8 });
  assert.deepEqual(both, { status: 200, json: plain(recommendForUser(model, 7, 8, unseen)) });
  assert.notDeepEqual(both.json, plain(recommendForUser(model, 7, 8)));
  const excluded = new Set([...Array.from(rated, (m) => model.movies.movieId[m]), ...unseen]);
  for (const r of both.json.recommendations) assert.ok(!excluded.has(r.movieId), `movie ${r.movieId} was rated or just liked`);
  assert.equal((await post({ movieIds: unseen, userId: 7, n: 8 })).status, 200);
  assert.equal((await post({ userId: 7, movieIds: [424242] })).status, 400);
  assert.equal((await post({ batch: [{ userId: 7, movieIds: unseen, n: 8 }] })).json.results[0].recommendations.length, 8);
});

test("a known user with no likes gets the popular movies, flagged, none of those they rated", async () => {
  const { status, json } = await post({ userId: NO_LIKES_USER, n: 5 });
  assert.equal(status, 200);
  assert.equal(json.fallback, "popular");
  assert.equal(json.recommendations.length, 5);
  for (const r of json.recommendations) assert.ok(r.movieId > 5, `rated movie ${r.movieId} recommended`);
});

test("a batch answers in request order, unknown ids as per-item errors", async () => {
  const batch = [{ similarTo: 3, n: 2 }, { userId: 999 }, { userId: 12, n: 3 }, { movieIds: [2, 77, 88] }, { movieIds: [4] }];
  const { status, json } = await post({ batch });
  assert.equal(status, 200);
  assert.deepEqual(json, {
    results: [
      plain(similarTo(model, 3, 2)),
      { error: "unknown userId: 999", status: 404 },
      plain(recommendForUser(model, 12, 3)),
      { error: "unknown movieIds: 77, 88", status: 400 },
      plain(recommendForMovies(model, [4], 10)),
    ],
  });
});

test("bad input gets a 4xx with {error} saying what is wrong", async () => {
  const cases: [string, unknown, number, RegExp][] = [
    ["malformed JSON", '{"userId": 1,', 400, /not valid JSON/],
    ["empty body", "", 400, /empty/],
    ["a JSON array", [1], 400, /^body must be object, got \[1\]$/],
    ["null", null, 400, /^body must be object, got null$/],
    ["no request field", {}, 400, /^body must have one of the fields userId, movieIds, similarTo, batch, got none$/],
    ["only n", { n: 3 }, 400, /must have one of the fields .*, got n$/],
    ["userId as a string", { userId: "7" }, 400, /^body.userId must be integer, got "7"$/],
    ["fractional userId", { userId: 7.5 }, 400, /^body.userId must be integer, got 7.5$/],
    ["movieIds not a list", { movieIds: 1 }, 400, /^body.movieIds must be array, got 1$/],
    ["a movie id as a string", { movieIds: [1, "2"] }, 400, /^body.movieIds\[1\] must be integer, got "2"$/],
    ["an extra field", { userId: 7, verbose: true }, 400, /^body has an unexpected field "verbose" \(expected only userId, movieIds, n\)$/],
    ["two request kinds", { userId: 7, similarTo: 1 }, 400, /unexpected field "similarTo"/],
    ["n = 0", { userId: 7, n: 0 }, 400, /^body.n must be >= 1, got 0$/],
    ["n = 101", { similarTo: 1, n: 101 }, 400, /^body.n must be <= 100, got 101$/],
    ["n as a string", { similarTo: 1, n: "5" }, 400, /^body.n must be integer, got "5"$/],
    ["unknown userId", { userId: 123456 }, 404, /^unknown userId: 123456$/],
    ["unknown movieIds", { movieIds: [1, 777, 888] }, 400, /^unknown movieIds: 777, 888$/],
    ["unknown similarTo", { similarTo: 999 }, 400, /^unknown movieId: 999$/],
    ["empty batch", { batch: [] }, 400, /^body.batch must NOT have fewer than 1 items, got 0 items$/],
    ["batch of 101", { batch: Array(101).fill({ userId: 7 }) }, 400, /^body.batch must NOT have more than 100 items, got 101 items$/],
    ["nested batch", { batch: [{ userId: 7 }, { batch: [{ userId: 7 }] }] }, 400, /^body.batch\[1\] must have one of the fields userId, movieIds, similarTo, got batch$/],
    ["bad n in a batch item", { batch: [{ userId: 7 }, { userId: 7, n: 500 }] }, 400, /^body.batch\[1\].n must be <= 100, got 500$/],
    ["n beside batch", { batch: [{ userId: 7 }], n: 3 }, 400, /unexpected field "n" \(expected only batch\)/],
    ["prototype poisoning", '{"userId": 7, "__proto__": {"n": 1}}', 400, /not valid JSON/],
  ];
  for (const [name, body, status, message] of cases) {
    const res = await post(body);
    assert.equal(res.status, status, `${name}: ${JSON.stringify(res.json)}`);
    assert.deepEqual(Object.keys(res.json), ["error"], name);
    assert.match(res.json.error, message, name);
  }
});

test("a wrong or missing content type gets 415, an unknown route 404, both as {error}", async () => {
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/xml"]) {
    const res = await post({ userId: 7 }, type);
    assert.equal(res.status, 415);
    assert.deepEqual(res.json, { error: `expected content-type application/json, got ${type}` });
  }
  const untyped = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
    const req = http.request(`${base}/score`, { method: "POST" }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c)).on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject).end('{"userId": 7}');
  });
  assert.deepEqual(untyped, { status: 415, body: JSON.stringify({ error: "expected content-type application/json, got none" }) });
  const missing = await fetch(`${base}/scores`);
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { error: "no route GET /scores; expected GET /live, GET /ready or POST /score" });
});

test("a body over 1.5 MiB gets 413, and the server goes on answering", async () => {
  const big = JSON.stringify({ movieIds: Array(Math.ceil(BODY_LIMIT / 2)).fill(1) });
  assert.ok(big.length > BODY_LIMIT);
  assert.deepEqual(await post(big), { status: 413, json: { error: `expected a body of at most ${BODY_LIMIT} bytes (1.5 MiB), got more` } });
  const justUnder = JSON.stringify({ movieIds: Array(Math.floor((BODY_LIMIT - 20) / 2)).fill(1) });
  assert.ok(justUnder.length <= BODY_LIMIT);
  assert.equal((await post(justUnder)).status, 200);
  assert.equal((await post({ userId: 7 })).status, 200);
});

test("300 concurrent requests of every kind each get their own answer", async () => {
  const requests: ({ userId: number; n: number } | { movieIds: number[] } | { similarTo: number })[] = Array.from({ length: 300 }, (_, i) =>
    i % 3 === 0 ? { userId: 1 + (i % 60), n: 1 + (i % 20) } : i % 3 === 1 ? { movieIds: [1 + (i % 30), 1 + ((i * 7) % 30)] } : { similarTo: 1 + (i % 30) });
  const expected = requests.map((r) =>
    "userId" in r ? recommendForUser(model, r.userId, r.n) : "movieIds" in r ? recommendForMovies(model, r.movieIds, 10) : similarTo(model, r.similarTo, 10));
  const answers = await Promise.all(requests.map((r) => post(r)));
  answers.forEach((a, i) => assert.deepEqual(a, { status: 200, json: plain(expected[i]) }, JSON.stringify(requests[i])));
});

test("findModelDir finds the shallowest model.json under AZUREML_MODEL_DIR", async () => {
  assert.equal(await findModelDir(path.join(tmp, "azureml-models")), modelDir);
  assert.equal(await findModelDir(modelDir), modelDir);
  const empty = path.join(tmp, "empty", "deep");
  await mkdir(empty, { recursive: true });
  await assert.rejects(findModelDir(path.dirname(empty)), /expected a model.json under .*empty, found none/);
});

test("serve from AZUREML_MODEL_DIR logs one JSON line per request and on SIGTERM finishes in-flight requests, then exits 0", async () => {
  const server = startServer([], { AZUREML_MODEL_DIR: path.join(tmp, "azureml-models") });
  const { child, lines, logged } = server;
  try {
    await logged(/model loaded from .*movielens_recommender.1 /);
    const url = await server.url();
    assert.equal((await post({ userId: 23 }, undefined, url)).status, 200);
    assert.equal((await post({ userId: 987654321 }, undefined, url)).status, 404);

    const body = JSON.stringify({ userId: 7, n: 2 });
    const agent = new http.Agent({ keepAlive: true });
    const response = new Promise<{ status?: number; connection?: string; json: unknown }>((resolve, reject) => {
      const req = http.request(`${url}/score`, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": body.length } }, (res) => {
        let data = "";
        res.on("data", (c) => (data += c)).on("end", () => resolve({ status: res.statusCode, connection: res.headers.connection, json: JSON.parse(data) }));
      });
      req.on("error", reject);
      req.write(body.slice(0, 5));
      setTimeout(() => void (async () => {
        child.kill("SIGTERM");
        await logged(/SIGTERM: closing/);
        await assert.rejects(fetch(`${url}/live`), "a new connection after SIGTERM must be refused");
        req.end(body.slice(5));
      })().catch(reject), 100);
    });
    assert.deepEqual(await response, { status: 200, connection: "close", json: plain(recommendForUser(model, 7, 2)) });
    assert.deepEqual((await server.exitWithin(SHUTDOWN_GRACE + 5000)).result, [0, null]);
    agent.destroy();
  } finally {
    child.kill("SIGKILL");
  }
  const requestLines = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
  assert.deepEqual(requestLines.map(({ method, route, status }) => [method, route, status]), [
    ["POST", "/score", 200], ["POST", "/score", 404], ["POST", "/score", 200],
  ]);
  for (const l of requestLines) assert.equal(typeof l.ms, "number");
  assert.doesNotMatch(lines.join("\n"), /userId|987654321/, "request bodies must not be logged");
});

test("serve exits 1 with a clear log line when the model cannot be loaded, with one process or two workers", async () => {
  for (const workers of ["1", "2"]) {
    const child = spawn(process.execPath, [cli, "serve", "--port", "0", "--workers", workers, "--model-dir", path.join(tmp, "no-such-model")], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (c) => (out += c));
    child.stderr!.on("data", (c) => (out += c));
    assert.deepEqual(await once(child, "close"), [1, null], out);
    assert.match(out, /cannot load the model: .*no-such-model.model\.json/);
  }
});

test("serve --workers 2: two processes on one port answer alike, and SIGTERM stops both, exit 0", async () => {
  const server = startServer(["--workers", "2", "--quiet", "--model-dir", modelDir]);
  try {
    await server.logged(/model loaded/, 2);
    const out = server.lines.join("\n");
    const ports = new Set([...out.matchAll(/listening at http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => m[1]));
    assert.equal(ports.size, 1, out);
    const url = `http://127.0.0.1:${[...ports][0]}`;
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => post({ userId: 1 + (i % 60) }, undefined, url)));
    answers.forEach((a, i) => assert.deepEqual(a, { status: 200, json: plain(recommendForUser(model, 1 + (i % 60), 10)) }));
    server.child.kill("SIGTERM");
    assert.deepEqual((await server.exitWithin(SHUTDOWN_GRACE + 5000)).result, [0, null]);
    assert.equal(server.lines.filter((l) => /SIGTERM: closing/.test(l)).length, 2, server.lines.join("\n"));
  } finally {
    server.child.kill("SIGKILL");
  }
});

test("hostile bodies get a 4xx and a short error: nesting thousands deep, 190,000 unknown ids, 100,000 keys, a long key", async () => {
  const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
  const cases: [string, string, number, RegExp][] = [
    ["arrays 5,000 deep", deep(5000), 400, new RegExp(`^body nests arrays and objects deeper than ${MAX_DEPTH} levels$`)],
    ["arrays 700,000 deep", deep(700_000), 400, /deeper than/],
    ["userId 5,000 deep", `{"userId": ${deep(5000)}}`, 400, /deeper than/],
    ["objects 200,000 deep", '{"a":'.repeat(200_000) + "1" + "}".repeat(200_000), 400, /deeper than/],
    ["a batch item 5,000 deep", `{"batch": [{"movieIds": ${deep(5000)}}]}`, 400, /deeper than/],
    [`${MAX_DEPTH} levels`, `{"batch": [{"movieIds": [1]}], "x": ${deep(MAX_DEPTH - 1)}}`, 400, /unexpected field "x"/],
    ["190,000 unknown ids", JSON.stringify({ movieIds: Array.from({ length: 190_000 }, (_, i) => 1_000_000 + i) }), 400,
      /^unknown movieIds: 1000000, 1000001, 1000002, 1000003, 1000004, 1000005, 1000006, 1000007, 1000008, 1000009 and 189,990 more$/],
    ["100,000 keys", JSON.stringify(Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i]))), 400,
      /^body must have one of the fields userId, movieIds, similarTo, batch, got k0, k1, .*, k9 and 99,990 more$/],
    ["a 1 MB key", JSON.stringify({ userId: 7, ["x".repeat(1_000_000)]: 1 }), 400, /^body has an unexpected field "x{60}\.\.\. \(999,940 more characters\)" \(expected only userId, movieIds, n\)$/],
    ["a 1 MB string", JSON.stringify({ userId: "y".repeat(1_000_000) }), 400, /^body.userId must be integer, got "y{36}\.\.\.$/],
  ];
  for (const [name, body, status, message] of cases) {
    const res = await post(body);
    assert.equal(res.status, status, `${name}: ${JSON.stringify(res.json).slice(0, 200)}`);
    assert.match(res.json.error, message, name);
    assert.ok(JSON.stringify(res.json).length < 300, `${name}: ${JSON.stringify(res.json).length} bytes`);
  }
  const batch = await post({ batch: [{ movieIds: Array.from({ length: 50_000 }, (_, i) => -1 - i) }] });
  assert.deepEqual(batch.json.results[0], { error: "unknown movieIds: -1, -2, -3, -4, -5, -6, -7, -8, -9, -10 and 49,990 more", status: 400 });
  assert.equal((await post({ userId: 7 })).status, 200);
});

/** Sends raw bytes on a new connection and resolves with the response's bytes (latin1) when the server closes it or 2 s pass. */
function rawRequest(bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    const socket: net.Socket = net.connect(Number(new URL(base).port), "127.0.0.1", () => socket.end(bytes));
    socket.on("data", (c) => (data += c.toString("latin1"))).on("close", () => resolve(data)).on("error", reject);
    socket.setTimeout(2000, () => socket.destroy());
  });
}

test("control characters from input reach error bodies escaped: a C1 byte in a header, bidi and C1 in a field name", async () => {
  const response = await rawRequest(Buffer.from("POST /score HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/\x9b31m\r\nContent-Length: 2\r\n\r\n{}", "latin1"));
  assert.match(response, /^HTTP\/1.1 415 /);
  assert.ok(response.endsWith(JSON.stringify({ error: "expected content-type application/json, got text/\\u009b31m" })), response);
  const res = await post({ userId: 7, "\u009b31m\u202eevil\u0007": 1 });
  assert.equal(res.status, 400);
  assert.equal(res.json.error, 'body has an unexpected field "\\u009b31m\\u202eevil\\u0007" (expected only userId, movieIds, n)');
});

/** Resolves with the times (ms from now) at which each socket was closed, or rejects after `limit` ms. */
function closedWithin(sockets: net.Socket[], limit: number): Promise<number[]> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${sockets.filter((s) => !s.closed).length} connections still open after ${limit} ms`)), limit);
    void Promise.all(sockets.map((s) => (s.closed ? 0 : once(s, "close").then(() => performance.now() - t0)))).then((times) => {
      clearTimeout(timer);
      resolve(times);
    });
  });
}

test("200 slow clients (silent, trickling headers, trickling a body, idle after an answer) are closed by the timeouts", async () => {
  const timeouts = { headers: 500, request: 1000, keepAlive: 500, idle: 1500 };
  const slow = buildApp(() => model, { logger: false, timeouts });
  await slow.listen({ host: "127.0.0.1", port: 0 });
  const port = (slow.server.address() as { port: number }).port;
  const timers: NodeJS.Timeout[] = [];
  const answered: string[] = [];
  const sockets = Array.from({ length: 200 }, (_, i) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => {}).on("data", (c) => answered.push(c.toString().split("\r\n")[0]));
    socket.on("connect", () => {
      const trickle = (text: string) => timers.push(setInterval(() => socket.writable && socket.write(text), 100));
      if (i % 4 === 1) {
        socket.write("POST /score HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        trickle("a");
      } else if (i % 4 === 2) {
        socket.write("POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[");
        trickle("1,");
      } else if (i % 4 === 3) {
        socket.write('POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"userId": 7}');
      }
    });
    return socket;
  });
  try {
    const times = await closedWithin(sockets, 6000);
    assert.ok(Math.max(...times) < 4000, `the last connection closed after ${Math.round(Math.max(...times))} ms`);
    assert.equal(answered.filter((l) => l === "HTTP/1.1 200 OK").length, 50);
  } finally {
    timers.forEach(clearInterval);
    sockets.forEach((s) => s.destroy());
    await slow.close();
  }
});

/** `cli.js serve ...args` as a child process: its log lines (stdout and stderr) and a wait for a line. */
function startServer(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [cli, "serve", "--port", "0", ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const exited = once(child, "close") as Promise<[number | null, string | null]>;
  const lines: string[] = [];
  const waiters: [RegExp, number, () => void][] = [];
  const count = (pattern: RegExp) => lines.filter((l) => pattern.test(l)).length;
  for (const stream of [child.stdout!, child.stderr!]) {
    readline.createInterface({ input: stream }).on("line", (line) => {
      lines.push(line);
      for (const [i, [pattern, times, resolve]] of [...waiters.entries()].reverse()) if (count(pattern) >= times) waiters.splice(i, 1), resolve();
    });
  }
  /** Resolves when `times` lines matched `pattern`; rejects after 20 s. */
  const logged = (pattern: RegExp, times = 1) => new Promise<void>((resolve, reject) => {
    if (count(pattern) >= times) return resolve();
    const timer = setTimeout(() => reject(new Error(`expected ${times} lines matching ${pattern} within 20 s, got:\n${lines.join("\n")}`)), 20_000);
    waiters.push([pattern, times, () => (clearTimeout(timer), resolve())]);
  });
  /** Resolves with [code, signal] and the ms it took, or rejects when the process is still running after `limit` ms. */
  const exitWithin = async (limit: number) => {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still running ${limit} ms later:\n${lines.join("\n")}`)), limit)));
    try {
      return { result: await Promise.race([exited, late]), ms: performance.now() - t0 };
    } finally {
      clearTimeout(timer);
    }
  };
  const url = async () => {
    await logged(/listening at/);
    return `http://127.0.0.1:${/listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(lines.find((l) => /listening at/.test(l))!)![1]}`;
  };
  const workerPids = () => readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
  return { child, lines, logged, exitWithin, url, workerPids };
}

test("SIGTERM while a client trickles a body: the server exits within a few seconds; log lines stay short", async () => {
  const server = startServer(["--model-dir", modelDir]);
  const socket = new net.Socket();
  let timer: NodeJS.Timeout | undefined;
  try {
    await server.logged(/model loaded/);
    const url = await server.url();
    assert.equal((await fetch(`${url}/${"a".repeat(5000)}`)).status, 404);
    socket.on("error", () => {}).connect(Number(new URL(url).port), "127.0.0.1");
    await once(socket, "connect");
    socket.write("POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[");
    timer = setInterval(() => socket.writable && socket.write("1,"), 100);
    await new Promise((r) => setTimeout(r, 300));
    server.child.kill("SIGTERM");
    const { result, ms } = await server.exitWithin(SHUTDOWN_GRACE + 5000);
    assert.deepEqual(result, [0, null]);
    assert.ok(ms > SHUTDOWN_GRACE - 500, `exited after ${Math.round(ms)} ms, before the grace period`);
    assert.ok(server.lines.some((l) => /requests still in flight 3000 ms after SIGTERM: closing their connections/.test(l)), server.lines.join("\n"));
    for (const line of server.lines) assert.ok(line.length < 300, line);
  } finally {
    clearInterval(timer);
    socket.destroy();
    server.child.kill("SIGKILL");
  }
});

test("serve --workers 2: a killed worker is replaced and the service goes on answering", async () => {
  const server = startServer(["--workers", "2", "--quiet", "--model-dir", modelDir]);
  try {
    await server.logged(/model loaded/, 2);
    const url = await server.url();
    const [victim, survivor] = server.workerPids();
    process.kill(victim, "SIGKILL");
    await server.logged(new RegExp(`worker ${victim} exited with SIGKILL; starting another`));
    await server.logged(/model loaded/, 3);
    const pids = server.workerPids();
    assert.equal(pids.length, 2);
    assert.ok(pids.includes(survivor) && !pids.includes(victim), `${pids}`);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => post({ userId: 1 + (i % 60) }, undefined, url)));
    answers.forEach((a, i) => assert.deepEqual(a, { status: 200, json: plain(recommendForUser(model, 1 + (i % 60), 10)) }));
    server.child.kill("SIGTERM");
    assert.deepEqual((await server.exitWithin(10_000)).result, [0, null]);
  } finally {
    server.child.kill("SIGKILL");
  }
});

test("serve --workers 2: more than 2 workers dying within a minute stop the service, exit 1, with a log line saying so", async () => {
  const server = startServer(["--workers", "2", "--quiet", "--model-dir", modelDir]);
  try {
    await server.logged(/model loaded/, 2);
    for (let death = 1; death <= 2; death++) {
      process.kill(server.workerPids()[0], "SIGKILL");
      await server.logged(/exited with SIGKILL; starting another/, death);
    }
    process.kill(server.workerPids()[0], "SIGKILL");
    const { result } = await server.exitWithin(10_000);
    assert.deepEqual(result, [1, null]);
    assert.ok(server.lines.some((l) => /exited with SIGKILL; 3 workers died within a minute \(more than 2\): stopping the service/.test(l)), server.lines.join("\n"));
  } finally {
    server.child.kill("SIGKILL");
  }
});
