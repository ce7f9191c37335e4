import { countSorted } from "./csr";
import { filterRatings } from "./features";
import { FNV_OFFSET, FNV_PRIME, fnvDecimal, fnvString } from "./hash";
import { type Ratings, RATING_DECIMALS } from "./ingest";
import { runTask, shared, sharedArray } from "./workers";

/**
 * The `count` ids with the smallest (fnv1a32("<seed>:<word>:<id>"), id): user sampling
 * (spec step 3, word "user") and evaluation sampling (step 12, word "eval").
 */
export function hashSample(ids: Int32Array, count: number, seed: number, word: string): Int32Array {
  if (count >= ids.length) return ids;
  const prefix = fnvString(FNV_OFFSET, `${seed}:${word}:`);
  const hashes = Uint32Array.from(ids, (id) => fnvDecimal(prefix, id));
  const order = Array.from(ids.keys()).sort((a, b) => hashes[a] - hashes[b] || ids[a] - ids[b]);
  return Int32Array.from(order.slice(0, count), (i) => ids[i]).sort();
}

/** Distinct values of `ids`, ascending. */
export function distinct(ids: Int32Array): Int32Array {
  return ascendingRuns(ids) ?? distinctUnsorted(ids);
}

/** The heads of the runs of `ids` when they ascend (ratings come sorted by user), else undefined: one pass, no table. */
function ascendingRuns(ids: Int32Array): Int32Array | undefined {
  let n = ids.length > 0 ? 1 : 0;
  for (let i = 1; i < ids.length; i++) {
    if (ids[i] < ids[i - 1]) return undefined;
    if (ids[i] !== ids[i - 1]) n++;
  }
  const values = new Int32Array(n);
  for (let i = 0, k = 0; i < ids.length; i++) if (i === 0 || ids[i] !== ids[i - 1]) values[k++] = ids[i];
  return values;
}

function distinctUnsorted(ids: Int32Array): Int32Array {
  let max = 0;
  for (let i = 0; i < ids.length; i++) if (ids[i] > max) max = ids[i];
  if (max >= 1 << 26) {
    const sorted = ids.slice().sort();
    let n = 0;
    for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[n++] = sorted[i];
    return sorted.slice(0, n);
  }
  const seen = new Uint8Array(max + 1);
  let n = 0;
  for (let i = 0; i < ids.length; i++) if (!seen[ids[i]]) { seen[ids[i]] = 1; n++; }
  const values = new Int32Array(n);
  for (let v = 0, j = 0; v <= max; v++) if (seen[v]) values[j++] = v;
  return values;
}

/** Keeps the ratings of `sampleUsers` users chosen by hash (spec step 3); all when undefined. */
export function sampleUsers(ratings: Ratings, sampleUsers: number | undefined, seed: number): Ratings {
  if (sampleUsers === undefined) return ratings;
  const users = distinct(ratings.userId);
  if (sampleUsers >= users.length) return ratings;
  const kept = new Set(hashSample(users, sampleUsers, seed, "user"));
  const keep = new Uint8Array(ratings.userId.length);
  for (let i = 0; i < keep.length; i++) keep[i] = kept.has(ratings.userId[i]) ? 1 : 0;
  return filterRatings(ratings, keep);
}

/**
 * liked = rating >= likeThreshold (spec step 4), exact on the decimals written in ratings.csv, though ratings are
 * float32 (3.3 is stored as 3.2999999523). Compared: the float32 rating and the float32 of the smallest decimal with
 * RATING_DECIMALS places that is >= likeThreshold. Exact because ingest accepts ratings in 0.5..5 with at most
 * RATING_DECIMALS (6) decimals: two such decimals differ by at least 1e-6, more than twice the float32 rounding error
 * below 8 (2^-22), so float32 keeps them distinct and in order. likeThreshold is read as the shortest decimal that
 * gives its double (how JavaScript prints it: 3.3, not 3.29999999999999982236431605997495353221893310546875).
 */
export function likedOf(ratings: Ratings, likeThreshold: number): Uint8Array {
  const cut = likeCut(likeThreshold);
  const liked = new Uint8Array(ratings.rating.length);
  for (let i = 0; i < liked.length; i++) liked[i] = ratings.rating[i] >= cut ? 1 : 0;
  return liked;
}

/** The float32 that a rating must reach to be a like (see likedOf). */
function likeCut(likeThreshold: number): number {
  if (likeThreshold <= 0.5) return 0.5; // every rating, at least 0.5, is a like
  if (likeThreshold > 5) return Infinity; // none
  const [whole, fraction = ""] = String(likeThreshold).split("."); // plain notation in 0.5..5
  let units = Number(whole) * 10 ** RATING_DECIMALS + Number(fraction.slice(0, RATING_DECIMALS).padEnd(RATING_DECIMALS, "0"));
  if (/[1-9]/.test(fraction.slice(RATING_DECIMALS))) units++;
  return Math.fround(units / 10 ** RATING_DECIMALS);
}

/**
 * 1 where a rating is test: fnv1a32("<seed>:<word>:<userId>:<movieId>") % 10000 < testFraction * 10000
 * (spec step 5 with word "split"; the validation split uses "valid").
 */
export function splitRatings(ratings: Pick<Ratings, "userId" | "movieId">, testFraction: number, seed: number, word = "split"): Uint8Array {
  const job = testJob(ratings, testFraction, seed, word, new Uint8Array(ratings.userId.length), decimals(ratings.movieId));
  testRange(job, 0, ratings.userId.length);
  return job.isTest;
}

/** What testRange reads and fills: the ratings' ids, the hash's prefix and digit table, the threshold, and isTest. */
interface TestJob {
  userId: Int32Array;
  movieId: Int32Array;
  prefix: number;
  digits: Int32Array;
  threshold: number;
  isTest: Uint8Array;
}

const testJob = ({ userId, movieId }: Pick<Ratings, "userId" | "movieId">, testFraction: number, seed: number, word: string, isTest: Uint8Array, digits: Int32Array): TestJob =>
  ({ userId, movieId, prefix: fnvString(FNV_OFFSET, `${seed}:${word}:`), digits, threshold: testFraction * 10000, isTest });

/** What the threads of splitAll share: testRange's job, and the ratings, likeCut's float, and the liked flags and classes to fill. */
interface SplitJob extends TestJob {
  rating: Float32Array;
  cut: number;
  liked: Uint8Array;
  classes: Uint8Array;
}

/**
 * likedOf and splitRatings (spec steps 4 and 5) at once, the ratings shared out over `threads` threads; with each
 * rating's class for the matrices, liked + 2 * isTest.
 */
export async function splitAll(ratings: Ratings, { likeThreshold, testFraction, seed }: { likeThreshold: number; testFraction: number; seed: number }, threads: number): Promise<{ liked: Uint8Array; isTest: Uint8Array; classes: Uint8Array }> {
  const n = ratings.userId.length, on = threads > 1 && n >= MIN_SHARE * threads ? threads : 1;
  const place = <T extends Int32Array | Float32Array>(array: T): T => (on > 1 ? shared(array) : array);
  const flags = () => (on > 1 ? sharedArray(Uint8Array, n) : new Uint8Array(n));
  const { userId, movieId, rating } = ratings;
  const job: SplitJob = {
    ...testJob({ userId: place(userId), movieId: place(movieId) }, testFraction, seed, "split", flags(), place(decimals(movieId))),
    rating: place(rating), cut: likeCut(likeThreshold), liked: flags(), classes: flags(),
  };
  await runTask("split.rate", splitTask, job, on);
  return { liked: job.liked, isTest: job.isTest, classes: job.classes };
}

/** Below this many ratings a thread each, splitAll and encodeAll stay on one thread. */
const MIN_SHARE = 1 << 20;

/** Thread `index` of `threads` of splitAll: liked, isTest and classes for its share of the ratings. */
export function splitTask(job: SplitJob, index: number, threads: number): void {
  const n = job.userId.length, lo = Math.floor((n * index) / threads), hi = Math.floor((n * (index + 1)) / threads);
  const { rating, cut, liked, isTest, classes } = job;
  for (let i = lo; i < hi; i++) liked[i] = rating[i] >= cut ? 1 : 0;
  testRange(job, lo, hi);
  for (let i = lo; i < hi; i++) classes[i] = liked[i] | (isTest[i] << 1);
}

/** isTest[i] for ratings i in [lo, hi) (see splitRatings). */
function testRange({ userId, movieId, prefix, digits, threshold, isTest }: TestJob, lo: number, hi: number): void {
  for (let i = lo; i < hi; ) {
    const user = userId[i], userPrefix = fnvString(fnvDecimal(prefix, user), ":") | 0; // int32: the steps below stay integer
    for (; i < hi && userId[i] === user; i++) {
      const id = movieId[i];
      let h = userPrefix;
      if (id >= 0 && id < digits.length) {
        const x = digits[id];
        for (let s = 4 * ((x >>> 28) - 1); s >= 0; s -= 4) h = Math.imul(h ^ (48 + ((x >>> s) & 15)), FNV_PRIME);
      } else h = fnvDecimal(userPrefix >>> 0, id);
      isTest[i] = (h >>> 0) % 10000 < threshold ? 1 : 0; // h as uint32 here: an integer remainder, not a float one
    }
  }
}

/**
 * The decimal digits of each id in 0..max of `ids` (when max < 2^20), packed: the digit count in bits 28-31, the digits
 * in 4 bits each below, the last in bits 0-3 (4 bytes an id keep the table in cache).
 */
function decimals(ids: Int32Array): Int32Array {
  let max = -1;
  for (let i = 0; i < ids.length; i++) if (ids[i] > max) max = ids[i];
  const digits = new Int32Array(max < 1 << 20 ? max + 1 : 0); // ids below 2^20 have at most 7 digits
  for (let id = 0; id < digits.length; id++) {
    const text = String(id);
    let x = text.length << 28;
    for (let d = 0; d < text.length; d++) x |= (text.charCodeAt(d) - 48) << (4 * (text.length - 1 - d));
    digits[id] = x;
  }
  return digits;
}

/** Encoding (spec step 6): ids ranked ascending; `userIds[enc]` and `movieIds[enc]` map back. */
export interface Encoding {
  userIds: Int32Array;
  movieIds: Int32Array;
  userEnc: Int32Array;
  movieEnc: Int32Array;
}

export function encode(ratings: Ratings): Encoding {
  const [userIds, userEnc] = rank(ratings.userId);
  const [movieIds, movieEnc] = rank(ratings.movieId);
  return { userIds, movieIds, userEnc, movieEnc };
}

/**
 * encode, each thread of `threads` ranking its share of the ratings (ids below 2^26; else encode on this thread). With
 * the ratings' `classes`, the threads also count the matrices' entries in the same pass: `perRow` is
 * csrsOnThreads's count of (userEnc, movieEnc) by row and class, null when the ratings do not come by user, then
 * movie; undefined when not counted here.
 */
export async function encodeAll(ratings: Ratings, threads: number, classes?: Uint8Array): Promise<Encoding & { perRow?: Int32Array | null }> {
  const n = ratings.userId.length;
  if (threads <= 1 || n < MIN_SHARE * threads) return encode(ratings);
  const userIds = distinct(ratings.userId), movieIds = distinct(ratings.movieId);
  const userLookup = lookupOf(userIds), movieLookup = lookupOf(movieIds);
  if (!userLookup || !movieLookup) return encode(ratings);
  const job: EncodeJob = {
    userId: shared(ratings.userId), movieId: shared(ratings.movieId), userLookup: shared(userLookup), movieLookup: shared(movieLookup),
    userEnc: sharedArray(Int32Array, n), movieEnc: sharedArray(Int32Array, n),
    count: classes && {
      classes: shared(classes), perRow: Array.from({ length: threads }, () => sharedArray(Int32Array, 8 * userIds.length)),
      sorted: sharedArray(Int32Array, threads), ends: sharedArray(Int32Array, 4 * threads),
    },
  };
  await runTask("encode.rank", encodeTask, job, threads);
  return { userIds, movieIds, userEnc: job.userEnc, movieEnc: job.movieEnc, ...(job.count ? { perRow: countsOf(job.count) } : {}) };
}

/** The threads' counts summed, if each share came sorted and each began after the one before ended; else null. */
function countsOf({ perRow, sorted, ends }: Count): Int32Array | null {
  for (let t = 0; t < perRow.length; t++) {
    if (!sorted[t]) return null;
    const [row, col, lastRow, lastCol] = t > 0 ? [ends[4 * t], ends[4 * t + 1], ends[4 * t - 2], ends[4 * t - 1]] : [0, 0, -1, 0];
    if (row < lastRow || (row === lastRow && col <= lastCol)) return null;
  }
  const [sum, ...rest] = perRow;
  for (const counts of rest) for (let i = 0; i < sum.length; i++) sum[i] += counts[i];
  return sum;
}

/** encodeAll's count: the ratings' classes, per thread its counts, whether its share came sorted, and its first and last (row, col). */
interface Count {
  classes: Uint8Array;
  perRow: Int32Array[];
  sorted: Int32Array;
  ends: Int32Array;
}

/** What the threads of encodeAll share: the ids, each id's rank (by id), the ranks to fill, and what to count. */
interface EncodeJob {
  userId: Int32Array;
  movieId: Int32Array;
  userLookup: Int32Array;
  movieLookup: Int32Array;
  userEnc: Int32Array;
  movieEnc: Int32Array;
  count?: Count;
}

/** Thread `index` of `threads` of encodeAll: the ranks of its share of the ratings (a share of at least MIN_SHARE), and their count. */
export function encodeTask({ userId, movieId, userLookup, movieLookup, userEnc, movieEnc, count }: EncodeJob, index: number, threads: number): void {
  const n = userId.length, lo = Math.floor((n * index) / threads), hi = Math.floor((n * (index + 1)) / threads);
  for (let i = lo; i < hi; i++) userEnc[i] = userLookup[userId[i]];
  for (let i = lo; i < hi; i++) movieEnc[i] = movieLookup[movieId[i]];
  if (!count) return;
  count.sorted[index] = countSorted(userEnc, movieEnc, count.classes, lo, hi, count.perRow[index]) ? 1 : 0;
  count.ends.set([userEnc[lo], movieEnc[lo], userEnc[hi - 1], movieEnc[hi - 1]], 4 * index);
}

/** Each id's rank among the ascending `values`, indexed by id; undefined when the largest is 2^26 or more. */
function lookupOf(values: Int32Array): Int32Array | undefined {
  const max = values.length ? values[values.length - 1] : 0;
  if (max >= 1 << 26) return undefined;
  const lookup = new Int32Array(max + 1);
  values.forEach((v, i) => (lookup[v] = i));
  return lookup;
}

/** The distinct ids ascending, and each value's rank among them. */
function rank(ids: Int32Array): [Int32Array, Int32Array] {
  const values = distinct(ids);
  const ranks = new Int32Array(ids.length);
  const lookup = lookupOf(values);
  if (lookup) {
    for (let i = 0; i < ids.length; i++) ranks[i] = lookup[ids[i]];
  } else {
    const lookup = new Map<number, number>();
    values.forEach((v, i) => lookup.set(v, i));
    for (let i = 0; i < ids.length; i++) ranks[i] = lookup.get(ids[i])!;
  }
  return [values, ranks];
}

/** The encoded index of `id` in ascending `ids`, or -1. */
export function indexOf(ids: Int32Array, id: number): number {
  let lo = 0, hi = ids.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ids[mid] === id) return mid;
    if (ids[mid] < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
