import { existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile, open } from "node:fs/promises";
import path from "node:path";
import { stringify } from "csv-stringify/sync";
import { NO_GENRES } from "./features";

/** Sizes of the built-in synthetic sets; `32m` has the shape of ml-32m. */
export const PRESETS = {
  small: { users: 1_000, movies: 4_000, ratings: 120_000 },
  medium: { users: 20_000, movies: 20_000, ratings: 2_000_000 },
  "32m": { users: 200_948, movies: 87_585, ratings: 32_000_204 },
} as const;

export type Preset = keyof typeof PRESETS;

const GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
  "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"];
const GENRE_WEIGHT = [8, 5, 2, 2, 12, 5, 3, 16, 3, 0.5, 4, 1, 1.5, 2.5, 6, 3, 7, 1.5, 1];
const WORDS = ["Night", "River", "Star", "Ghost", "City", "Dream", "Storm", "Heart", "Shadow", "Road", "Fire", "Island",
  "Winter", "Garden", "Machine", "Secret", "Empire", "Ocean", "Mirror", "Silence"];
const MIN_RATINGS = 20;

/** mulberry32: a small, fast, seeded generator of floats in [0, 1). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Where generated sets are cached: $MOVIELENS_CACHE, else .cache/ in the project. */
export function cacheRoot(): string {
  if (process.env.MOVIELENS_CACHE) return path.resolve(process.env.MOVIELENS_CACHE);
  let dir = __dirname;
  while (!existsSync(path.join(dir, "package.json")) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return path.join(dir, ".cache");
}

/** The directory of a synthetic set, generated on first use. */
export async function syntheticDir(preset: Preset, seed = 42, log: (line: string) => void = () => {}): Promise<string> {
  const dir = path.join(cacheRoot(), "synthetic", `${preset}-seed${seed}`);
  if (!existsSync(path.join(dir, "ratings.csv"))) {
    log(`generating the synthetic '${preset}' set in ${dir} (once)`);
    await writeSynthetic(dir, preset, seed);
  }
  return dir;
}

/**
 * Writes a synthetic MovieLens set (ratings.csv, movies.csv) to `dir`, atomically: users with genre
 * tastes, heavy-tailed activity (each at least 20 ratings), Zipf-like movie popularity, and a rating
 * distribution like MovieLens (about 80% at 3 or more). Same preset and seed, same bytes.
 */
export async function writeSynthetic(dir: string, preset: Preset, seed = 42): Promise<void> {
  const { users: nUsers, movies: nMovies, ratings: nRatings } = PRESETS[preset];
  const rand = random(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const pick = (cumulative: Float64Array) => {
    const x = rand() * cumulative[cumulative.length - 1];
    let lo = 0, hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const genreCumulative = cumulate(GENRE_WEIGHT);

  // Movies: sparse ids, 1-3 genres, a quality, and a popularity rank (Zipf-like weight).
  const movieId = new Int32Array(nMovies);
  const movieGenres: number[][] = [];
  const quality = new Float64Array(nMovies);
  const weight = new Float64Array(nMovies);
  const rank = shuffle(Int32Array.from({ length: nMovies }, (_, i) => i), rand);
  const rows: string[][] = [["movieId", "title", "genres"]];
  for (let m = 0, id = 0; m < nMovies; m++) {
    id += 1 + (rand() < 0.3 ? Math.floor(rand() * 6) : 0);
    movieId[m] = id;
    const genres = new Set<number>();
    if (rand() > 0.01) for (let g = 1 + Math.floor(rand() * rand() * 3.5); genres.size < g; ) genres.add(pick(genreCumulative));
    movieGenres.push([...genres].sort((a, b) => a - b));
    quality[m] = 0.5 * normal();
    weight[m] = 1 / Math.pow(rank[m] + 10, 1.1);
    rows.push([String(id), title(m, rand), genres.size ? movieGenres[m].map((g) => GENRES[g]).join("|") : NO_GENRES]);
  }
  const byGenre = GENRES.map((_, g) => Int32Array.from(movieGenres.flatMap((gs, m) => (gs.includes(g) ? [m] : []))));
  const genreMovieCumulative = byGenre.map((ms) => cumulate(Array.from(ms, (m) => weight[m])));
  const movieCumulative = cumulate(weight);

  // Users: heavy-tailed activity summing exactly to nRatings, at most a third of the catalogue each.
  const cap = Math.floor(nMovies / 3);
  const activity = Float64Array.from({ length: nUsers }, () => Math.pow(1 - rand(), -1 / 1.3));
  const spread = nRatings - MIN_RATINGS * nUsers;
  const total = activity.reduce((a, b) => a + b, 0);
  const counts = Int32Array.from(activity, (a) => Math.min(cap, MIN_RATINGS + Math.floor((spread * a) / total)));
  for (let left = nRatings - counts.reduce((a, b) => a + b, 0), u = 0; left > 0; u = (u + 1) % nUsers) {
    if (counts[u] < cap) { counts[u]++; left--; }
  }

  const staging = `${dir}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  await writeFile(path.join(staging, "movies.csv"), stringify(rows));
  const out = await open(path.join(staging, "ratings.csv"), "w");
  const stamp = new Int32Array(nMovies).fill(-1);
  let lines: string[] = ["userId,movieId,rating,timestamp"];
  for (let u = 0; u < nUsers; u++) {
    const favourites = [pick(genreCumulative), pick(genreCumulative)];
    const bias = 3.65 + 0.45 * normal();
    const chosen: number[] = [];
    while (chosen.length < counts[u]) {
      const g = favourites[rand() < 0.7 ? 0 : 1];
      let m = rand() < 0.6 && byGenre[g].length > 0 ? byGenre[g][pick(genreMovieCumulative[g])] : pick(movieCumulative);
      for (let tries = 0; stamp[m] === u; tries++) m = tries < 20 ? pick(movieCumulative) : (m + 1) % nMovies;
      stamp[m] = u;
      chosen.push(m);
    }
    chosen.sort((a, b) => a - b);
    const time = 946684800 + Math.floor(rand() * 7e8);
    for (const m of chosen) {
      const taste = movieGenres[m].some((g) => favourites.includes(g)) ? 0.5 : -0.3;
      const score = bias + quality[m] + taste + 0.9 * normal();
      const rating = Math.min(5, Math.max(0.5, Math.round(score * 2) / 2));
      lines.push(`${u + 1},${movieId[m]},${rating.toFixed(1)},${time + Math.floor(rand() * 1e6)}`);
    }
    if (lines.length > 50_000 || u === nUsers - 1) {
      await out.write(lines.join("\n") + "\n");
      lines = [];
    }
  }
  await out.close();
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.dirname(dir), { recursive: true });
  await rename(staging, dir);
}

function cumulate(weights: ArrayLike<number>): Float64Array {
  const c = new Float64Array(weights.length);
  let sum = 0;
  for (let i = 0; i < weights.length; i++) c[i] = sum += weights[i];
  return c;
}

function shuffle(a: Int32Array, rand: () => number): Int32Array {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** A title like MovieLens's: "Night River (1987)", some with commas or quotes. */
function title(m: number, rand: () => number): string {
  const a = WORDS[Math.floor(rand() * WORDS.length)], b = WORDS[Math.floor(rand() * WORDS.length)];
  const year = 1920 + Math.floor(rand() * 104);
  if (m % 17 === 0) return `${a} of the ${b}, The (${year})`;
  if (m % 29 === 0) return `"${a}" ${b} ${m} (${year})`;
  return `${a} ${b} ${m} (${year})`;
}
