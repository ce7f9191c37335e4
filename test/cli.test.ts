import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const cli = path.join(__dirname, "..", "lib", "cli.js");
const root = mkdtempSync(path.join(tmpdir(), "cli-"));
const modelDir = path.join(root, "model");

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runIn(root, ...args);
}

async function runIn(cache: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], { env: { ...process.env, MOVIELENS_CACHE: cache } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

test("train on the small synthetic set, then recommend, similar and export-neighbours", async () => {
  const trained = await run("train", "--synthetic", "small", "--model-dir", modelDir, "--k", "50");
  assert.equal(trained.code, 0, trained.stderr);
  for (const stage of ["ingest", "genres", "merge", "sample", "split", "encode", "csr", "neighbours", "evaluate"]) {
    assert.match(trained.stdout, new RegExp(`^${stage} +\\d+\\.\\d\\d s`, "m"));
  }
  assert.match(trained.stdout, /^precision@10 +0\.\d{4} +0\.\d{4}$/m);
  assert.match(trained.stdout, /^users +1,000 +1,000$/m);

  const manifest = JSON.parse(readFileSync(path.join(modelDir, "model.json"), "utf8"));
  assert.equal(manifest.params.k, 50);
  assert.equal(manifest.input.source, "synthetic:small");
  assert.deepEqual(Object.keys(manifest.metrics), ["precision", "recall", "hitrate", "total_hits", "total_liked", "users", "ndcg", "coverage", "map", "mrr"]);
  assert.equal(manifest.counts.ratings, 120_000);

  const rec = await run("recommend", "--model-dir", modelDir, "--user", "1", "--n", "3");
  assert.equal(rec.code, 0, rec.stderr);
  const lines = rec.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 5);
  assert.match(lines[0], /^Recommendations for user 1 \(liked \d+ of \d+ rated movies\):$/);
  assert.match(lines[1], /^ {3}# {2}movieId {6}score {2}title {2}\[genres\]$/);
  assert.match(lines[2], /^ {2}1\. +\d+ +\d+\.\d{4} {2}.+ \(\d{4}\) {2}\[.*\]$/);

  const out = path.join(root, "neighbours.tsv");
  const exported = await run("export-neighbours", "--model-dir", modelDir, "--out", out);
  assert.equal(exported.code, 0, exported.stderr);
  const tsv = readFileSync(out, "utf8").trim().split("\n");
  assert.equal(tsv.length, Number(/^(\d+) movies with neighbours/.exec(exported.stdout)![1]));
  for (const line of tsv.slice(0, 50)) {
    assert.match(line, /^\d+\t\d+:[01]\.\d{6}(,\d+:[01]\.\d{6})*$/);
    const sims = line.split("\t")[1].split(",").map((p) => Number(p.split(":")[1]));
    assert.ok(sims.length <= 50 && sims.every((s, i) => i === 0 || s <= sims[i - 1]), line);
  }
  const [first, second] = tsv.map((l) => l.split("\t")[0]);
  const byMovies = await run("recommend", "--model-dir", modelDir, "--movies", `${first},${second}`, "--n", "2");
  assert.equal(byMovies.code, 0, byMovies.stderr);
  assert.equal(byMovies.stdout.trim().split("\n").length, 4);

  const similar = await run("similar", "--model-dir", modelDir, "--movie", String(first), "--n", "4");
  assert.equal(similar.code, 0, similar.stderr);
  assert.equal(similar.stdout.trim().split("\n").length, 6);
  assert.match(similar.stdout, new RegExp(`^Movies most similar to .+ \\(movieId ${first}\\):\n {3}# {2}movieId {8}sim`));
  assert.equal(similar.stdout.trimEnd().split("\n")[2].split(/ +/)[2], tsv[0].split("\t")[1].split(":")[0]);
});

test("train --similarity rp3beta (or tfidf) and tune record their choice in model.json", async () => {
  const rp3 = path.join(root, "rp3");
  const trained = await run("train", "--similarity", "rp3beta", "--beta", "0.4", "--k", "30", "--model-dir", rp3, "--threads", "2");
  assert.equal(trained.code, 0, trained.stderr);
  assert.match(trained.stdout, /neighbours .* rp3beta beta=0\.4 alpha=1, k=30/);
  const manifest = JSON.parse(readFileSync(path.join(rp3, "model.json"), "utf8"));
  assert.deepEqual([manifest.params.similarity, manifest.params.beta, manifest.params.k], ["rp3beta", 0.4, 30]);
  const tfidf = path.join(root, "tfidf");
  const weighted = await run("train", "--similarity", "tfidf", "--asym", "0.7", "--shrink", "5", "--k", "30", "--model-dir", tfidf, "--threads", "2");
  assert.equal(weighted.code, 0, weighted.stderr);
  assert.match(weighted.stdout, /neighbours .* tfidf asym=0\.7 shrink=5, k=30/);
  const tfidfParams = JSON.parse(readFileSync(path.join(tfidf, "model.json"), "utf8")).params;
  assert.deepEqual([tfidfParams.similarity, tfidfParams.asym, tfidfParams.shrink, tfidfParams.k], ["tfidf", 0.7, 5, 30]);

  const tuned = path.join(root, "tuned");
  // stdout and stderr into one file, as `tune ... > log 2>&1` does: the grid stays whole between the progress lines
  const log = path.join(root, "tune.log");
  const fd = openSync(log, "w");
  const code = await new Promise((resolve) => spawn(process.execPath, [cli, "tune", "--model-dir", tuned, "--similarities", "cosine,rp3beta,tfidf,bm25", "--shrinks", "0,20", "--betas", "0.3",
    "--alphas", "1", "--asyms", "0.7", "--k1s", "1.2", "--bs", "0.25", "--ks", "10,40", "--factors", "4", "--regularizations", "30", "--confidences", "3", "--iterations", "3", "--weights", "0.5"],
    { stdio: ["ignore", fd, fd], env: { ...process.env, MOVIELENS_CACHE: root } }).on("exit", resolve));
  closeSync(fd);
  const t = { stdout: readFileSync(log, "utf8") };
  assert.equal(code, 0, t.stdout);
  // popularity, 6 similarity settings (2 cosine, 1 rp3beta, 2 tfidf, 1 bm25) x 2 k, 1 ALS, 1 blend
  assert.match(t.stdout, /^validation grid\nmodel +similarity +shrink +beta +alpha +asym +k1 +b +k +factors +reg +conf +weight +precision@10 .*\n((popularity|neighbours|als|blend) .*\n){15}\ntuning took /m);
  assert.equal(t.stdout.match(/^(neighbours|popularity|als|blend) +(cosine|rp3beta|tfidf|bm25|popularity|-) /gm)!.length, 15);
  assert.equal(t.stdout.match(/^neighbours +tfidf +(0|20) +0 +1 +0\.7 +- +- /gm)!.length, 4);
  assert.equal(t.stdout.match(/^neighbours +bm25 +0 +0 +1 +- +1\.2 +0\.25 /gm)!.length, 2);
  const chosen = /chosen on validation: (.*), scored once on test/.exec(t.stdout)![1];
  const tunedManifest = JSON.parse(readFileSync(path.join(tuned, "model.json"), "utf8"));
  const { model, similarity, k, factors } = tunedManifest.params;
  assert.ok(model === "als" ? chosen.startsWith(`ALS factors=${factors}`) : chosen.includes(`${similarity} `) && chosen.includes(`k=${k}`), chosen);
  assert.equal(tunedManifest.tuning.length, 15);
  const bad = await run("tune", "--similarities", "jaccard");
  assert.match(bad.stderr, /unknown similarity "jaccard"/);
});

/** A MovieLens folder of 60 users and 8 movies, with remakes and sequels to name by title. */
function tinyMovieLens(): string {
  const dir = path.join(root, "tiny");
  mkdirSync(dir);
  const titles = ["Toy Story (1995)", "Toy Story 2 (1999)", "\"Matrix, The (1999)\"", "Hamlet (1948)", "Hamlet (1996)", "\"Misérables, Les (1995)\"", "Heat (1995)", "Alien (1979)"];
  writeFileSync(path.join(dir, "movies.csv"), `movieId,title,genres\n${titles.map((t, i) => `${i + 1},${t},Drama`).join("\n")}\n`);
  const rows = ["userId,movieId,rating,timestamp"];
  for (let u = 1; u <= 60; u++) for (let m = 1; m <= 8; m++) if ((u * 7 + m * 3) % 5 !== 0) rows.push(`${u},${m},${1 + ((u + 2 * m) % 5)}.0,1`);
  writeFileSync(path.join(dir, "ratings.csv"), `${rows.join("\n")}\n`);
  return dir;
}

test("--json output parses; movies are named by title, an ambiguous one lists its matches", async () => {
  const data = tinyMovieLens();
  const tiny = path.join(root, "tiny-model");
  const trained = await run("train", "--data", data, "--model-dir", tiny, "--k", "5", "--json");
  assert.equal(trained.code, 0, trained.stderr);
  const result = JSON.parse(trained.stdout);
  assert.deepEqual(Object.keys(result), ["source", "modelDir", "fit", "params", "metrics", "baseline", "counts", "timings"]);
  assert.equal(result.counts.movies, 8);
  assert.equal(result.params.k, 5);
  assert.match(trained.stderr, /^training on .*tiny\n[^]*^neighbours +\d/m);

  const tuning = await run("tune", "--data", data, "--model-dir", path.join(root, "tiny-tuned"), "--ks", "2,5", "--similarities", "rp3beta", "--betas", "0,0.5",
    "--alphas", "1", "--factors", "2", "--regularizations", "1", "--confidences", "1", "--weights", "0.5", "--valid-splits", "2", "--json");
  const tuned = JSON.parse(tuning.stdout);
  // popularity, 2 betas x 2 k, 1 ALS, 1 blend; each scored on two validation splits
  assert.equal(tuned.grid.length, 7);
  assert.equal(tuning.stderr.match(/^validation +\d/gm)?.length, 2, tuning.stderr);
  assert.deepEqual(tuned.grid[0].similarity, "popularity");
  assert.equal(tuned.params.model, tuned.chosen.model);
  if (tuned.chosen.model !== "als") assert.equal(tuned.params.k, tuned.chosen.k);
  // --factors "": neighbours only, no ALS nor blend
  const bm25 = JSON.parse((await run("tune", "--data", data, "--model-dir", path.join(root, "tiny-bm25"), "--ks", "2", "--similarities", "bm25", "--k1s", "5",
    "--bs", "0.4", "--factors", "", "--json")).stdout);
  assert.deepEqual(bm25.grid.map((r: { model: string }) => r.model), ["popularity", "neighbours"]);
  assert.deepEqual([bm25.params.model, bm25.params.similarity, bm25.params.k1, bm25.params.b, bm25.params.k], ["neighbours", "bm25", 5, 0.4, 2]);

  const rec = await run("recommend", "--model-dir", tiny, "--movies", "toy story", "The Matrix", "7", "--n", "3", "--json");
  assert.equal(rec.code, 0, rec.stderr);
  const recommended = JSON.parse(rec.stdout);
  assert.deepEqual(recommended.query.movies, [{ movieId: 1, title: "Toy Story (1995)" }, { movieId: 3, title: "Matrix, The (1999)" }, { movieId: 7, title: "Heat (1995)" }]);
  assert.equal(recommended.fallback, null);
  assert.ok(recommended.recommendations.length > 0 && recommended.recommendations.every((r: { movieId: number }) => ![1, 3, 7].includes(r.movieId)));

  const user = JSON.parse((await run("recommend", "--model-dir", tiny, "--user", "2", "--json")).stdout);
  assert.equal(user.query.user, 2);
  assert.ok(user.query.liked <= user.query.rated && user.query.rated > 0);
  const now = await run("recommend", "--model-dir", tiny, "--user", "5", "--movies", "Alien", "--n", "2");
  assert.match(now.stdout, /^Recommendations for user 5 \(liked \d+ of \d+ rated movies, and just now Alien \(1979\)\):\n/);

  const similar = await run("similar", "--model-dir", tiny, "--title", "miserables", "--json");
  assert.equal(similar.code, 0, similar.stderr);
  const sim = JSON.parse(similar.stdout);
  assert.deepEqual(sim.query.movie, { movieId: 6, title: "Misérables, Les (1995)", genres: ["Drama"] });
  assert.ok(sim.recommendations.every((r: { score: number }) => r.score > 0));

  const text = await run("similar", "--model-dir", tiny, "--title", "Hamlet (1996)", "--n", "2");
  assert.match(text.stdout, /^Movies most similar to Hamlet \(1996\) \(movieId 5\):\n/);

  const ambiguous = await run("recommend", "--model-dir", tiny, "--movies", "Hamlet");
  assert.equal(ambiguous.code, 1);
  assert.equal(ambiguous.stdout, "");
  assert.match(ambiguous.stderr, /^error: "Hamlet" matches 2 movies; give a movieId or the full title:\n +[45] {2}Hamlet \((1948|1996)\)\n +[45] {2}Hamlet \((1948|1996)\)\n$/);
});

test("every error is one line and a hint, naming the option or file and the value; no stack trace", async () => {
  const notData = path.join(root, "not-data");
  mkdirSync(path.join(notData, "ratings.csv"), { recursive: true });
  writeFileSync(path.join(notData, "movies.csv"), "movieId,title,genres\n");
  const broken = path.join(root, "broken-model");
  mkdirSync(broken);
  writeFileSync(path.join(broken, "model.json"), "{");
  const cases: [string[], RegExp][] = [
    [["train", "--k", "0"], /--k must be an integer in 1\.\.1000, got "0"/],
    [["train", "--n", "9007199254740991"], /--n must be an integer in 1\.\.1000, got "9007199254740991"/],
    [["train", "--test-fraction", "0"], /--test-fraction must be a number in \(0, 1\), got "0"/],
    [["train", "--test-fraction", "1"], /--test-fraction must be a number in \(0, 1\), got "1"/],
    [["train", "--beta", "abc"], /--beta must be a number in \[0, 1\], got "abc"/],
    [["train", "--asym", "1.5"], /--asym must be a number in \[0, 1\], got "1\.5"/],
    [["train", "--k1", "-1"], /--k1 must be a number in \[0, 1000000\], got "-1"/],
    [["tune", "--bs", "0.2,2"], /each b must be a number in \[0, 1\], got "2"/],
    [["train", "--like-threshold", "NaN"], /--like-threshold must be a number in \[0, 5\], got "NaN"/],
    [["train", "--threads", "100000"], /--threads must be an integer in 1\.\.256, got "100000"/],
    [["tune", "--ks", "10,5000"], /each k must be an integer in 1\.\.1000, got "5000"/],
    [["tune", "--valid-fraction", "1"], /--valid-fraction must be a number in \(0, 1\), got "1"/],
    [["tune", "--similarities", "jaccard"], /unknown similarity "jaccard"/],
    [["train", "--data", "x", "--synthetic", "small"], /cannot be used with/],
    [["train", "--data", path.join(root, "nowhere")], /^error: --data .*nowhere: no such folder \(a MovieLens folder holds ratings\.csv and movies\.csv; get one with: movielens-recsys download ml-latest-small --dest data\)$/m],
    [["train", "--data", notData], /^error: --data .*not-data: ratings\.csv is not a file/m],
    [["recommend", "--model-dir", modelDir], /^error: give --user ID or --movies MOVIE\.\.\./],
    [["recommend", "--model-dir", modelDir, "--user", "987654"], /unknown userId: 987654/],
    [["recommend", "--model-dir", modelDir, "--movies", "1,987654,987655"], /unknown movieIds: 987654, 987655/],
    [["recommend", "--model-dir", modelDir, "--user", "1", "--n", "1001"], /--n must be an integer in 1\.\.1000, got "1001"/],
    [["recommend", "--model-dir", path.join(root, "no-model"), "--user", "1"], /^error: --model-dir .*no-model: no model there \(no model\.json\); train one with: movielens-recsys train --model-dir /],
    [["similar", "--model-dir", modelDir], /^error: give --movie ID or --title TITLE/],
    [["similar", "--model-dir", broken, "--movie", "1"], /^error: --model-dir .*broken-model: cannot load the model: /],
    [["export-neighbours", "--model-dir", modelDir, "--out", path.join(root, "missing", "x.tsv")], /^error: .*missing\/x\.tsv: the directory .*missing does not exist$/m],
    [["similar", "--model-dir", modelDir, "--title", "Zzzz Qqqq"], /^error: no movie titled "Zzzz Qqqq" in the model$/m],
    [["download", "ml-1m"], /argument 'dataset'.*ml-latest-small, ml-100k, ml-25m, ml-32m/],
    [["download", "ml-100k", "--base-url", "ftp://x"], /--base-url must be an http\(s\) URL, got "ftp:\/\/x"/],
    [["trian"], /unknown command 'trian'/],
  ];
  for (const [args, message] of cases) {
    const r = await run(...args);
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.ok(lines.length <= 3, `${args.join(" ")} printed ${lines.length} lines:\n${r.stderr}`);
    assert.match(lines[0], /^error: /, args.join(" "));
    assert.doesNotMatch(r.stderr, /^\s+at /m, args.join(" "));
    assert.equal(r.stdout, "", args.join(" "));
  }
});

test("options are checked before any work: nothing is generated, read or written", async () => {
  const cache = mkdtempSync(path.join(tmpdir(), "cli-cache-"));
  const out = path.join(cache, "model");
  for (const bad of [["--test-fraction", "1.5"], ["--n", "9007199254740991"], ["--sample-users", "0"], ["--eval-users", "-1"], ["--seed", "1.5"]]) {
    const r = await runIn(cache, "train", "--synthetic", "32m", "--model-dir", out, ...bad);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^error: option '${bad[0]} <[a-z]+>' argument '${bad[1].replace(".", "\\.")}' is invalid`));
  }
  const tuned = await runIn(cache, "tune", "--synthetic", "32m", "--model-dir", out, "--betas", "0.2,7");
  assert.match(tuned.stderr, /each beta must be a number in \[0, 1\], got "7"/);
  const missing = await runIn(cache, "train", "--data", path.join(cache, "none"), "--model-dir", path.join(cache, "models", "m"));
  assert.match(missing.stderr, /^error: --data .*none: no such folder/);
  assert.deepEqual(readdirSync(cache), []);
  assert.ok(!existsSync(out));
});

test("compare: the spec's cosine, the recommended setting and popularity on the same users; the recommended model is saved", async () => {
  const compared = path.join(root, "compared");
  const r = await run("compare", "--model-dir", compared);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^test, 1,000 users +precision@10 +recall@10 +ndcg@10 +hitrate +vs popularity\ncosine \(original\) +(0\.\d{4} +){4}\d\.\d\dx\nrp3beta \(recommended\) +(0\.\d{4} +){4}\d\.\d\dx\npopularity +(0\.\d{4} +){4}1\.00x$/m);
  const json = JSON.parse((await run("compare", "--model-dir", compared, "--json")).stdout);
  assert.deepEqual(json.rows.map((row: { name: string }) => row.name), ["original", "recommended", "popularity"]);
  const [original, recommended, popularity] = json.rows;
  const manifest = JSON.parse(readFileSync(path.join(compared, "model.json"), "utf8"));
  assert.deepEqual([manifest.params.similarity, manifest.params.beta, manifest.params.k, manifest.fit], ["rp3beta", 0.2, 200, "all"]);
  assert.deepEqual(manifest.metrics, recommended.metrics);
  assert.deepEqual(manifest.baseline, popularity.metrics);
  const spec = await run("train", "--model-dir", path.join(root, "spec"), "--json");
  assert.deepEqual(JSON.parse(spec.stdout).metrics, original.metrics);
  assert.deepEqual(JSON.parse(spec.stdout).baseline, popularity.metrics);
});

test("--help explains every command", async () => {
  const help = await run("--help");
  assert.equal(help.code, 0);
  for (const command of ["train", "tune", "recommend", "similar", "export-neighbours"]) assert.match(help.stdout, new RegExp(`^ +${command}`, "m"));
  const trainHelp = await run("train", "--help");
  assert.match(trainHelp.stdout, /--sample-users <n>/);
  assert.match(trainHelp.stdout, /--synthetic <preset>.*\(choices: "small", "medium", "32m"\)/s);
  for (const command of ["train", "tune", "recommend", "similar", "export-neighbours", "download", "serve", "azure"]) {
    const h = await run(command, "--help");
    assert.equal(h.code, 0);
    assert.doesNotMatch(h.stdout, /\.\.\/|shared/, `${command} --help points outside the repository`);
  }
});
