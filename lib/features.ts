import type { Movies, Ratings } from "./ingest";

export const NO_GENRES = "(no genres listed)";

/** Genres one-hot (spec step 1): one 0/1 column per genre, sorted by name, movies x genres row-major. */
export interface GenreOneHot {
  genres: string[];
  onehot: Uint8Array;
}

/** The genres of one `genres` field; `(no genres listed)` gives none. */
export function genresOf(field: string): string[] {
  return field === NO_GENRES || field === "" ? [] : field.split("|");
}

export function oneHotGenres(movies: Movies): GenreOneHot {
  const lists = movies.genres.map(genresOf);
  const genres = [...new Set(lists.flat())].sort();
  const column = new Map(genres.map((g, i) => [g, i]));
  const onehot = new Uint8Array(lists.length * genres.length);
  lists.forEach((list, m) => {
    for (const g of list) onehot[m * genres.length + column.get(g)!] = 1;
  });
  return { genres, onehot };
}

/** Inner join of ratings with movies on movieId (spec step 2); ratings of unknown movies are dropped and counted. */
export function mergeRatings(ratings: Ratings, movies: Movies): { ratings: Ratings; dropped: number } {
  const keep = new Uint8Array(ratings.movieId.length);
  const max = movies.movieId.reduce((a, b) => Math.max(a, b), 0);
  if (max < 1 << 26) {
    const known = new Uint8Array(max + 1);
    for (const id of movies.movieId) known[id] = 1;
    for (let i = 0; i < keep.length; i++) keep[i] = known[ratings.movieId[i]] ?? 0;
  } else {
    const known = new Set(movies.movieId);
    for (let i = 0; i < keep.length; i++) keep[i] = known.has(ratings.movieId[i]) ? 1 : 0;
  }
  const kept = filterRatings(ratings, keep);
  return { ratings: kept, dropped: ratings.movieId.length - kept.movieId.length };
}

/** The ratings whose `keep` flag is 1, in order. */
export function filterRatings(ratings: Ratings, keep: Uint8Array): Ratings {
  let n = 0;
  for (let i = 0; i < keep.length; i++) n += keep[i];
  if (n === keep.length) return ratings;
  const out: Ratings = { userId: new Int32Array(n), movieId: new Int32Array(n), rating: new Float32Array(n) };
  for (let i = 0, j = 0; i < keep.length; i++) {
    if (!keep[i]) continue;
    out.userId[j] = ratings.userId[i];
    out.movieId[j] = ratings.movieId[i];
    out.rating[j++] = ratings.rating[i];
  }
  return out;
}
