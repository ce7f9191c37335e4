import { InvalidArgumentError } from "commander";
import { type Limit, outOfRange } from "./params";

/** A commander parser for an integer option in min..max; the error names the option and the value. */
export const integer = (name: string, min = 0, max = Number.MAX_SAFE_INTEGER) => (value: string): number => {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new InvalidArgumentError(`${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`}, got "${value}"`);
  }
  return n;
};

/** A commander parser for a number option, greater than `above` when given. */
export const number = (name: string, above = -Infinity) => (value: string): number => {
  const x = Number(value);
  if (value.trim() === "" || !Number.isFinite(x) || !(x > above)) {
    throw new InvalidArgumentError(`${name} must be a number${above > -Infinity ? ` > ${above}` : ""}, got "${value}"`);
  }
  return x;
};

/** A commander parser for an http(s) URL option. */
export const httpUrl = (name: string) => (value: string): string => {
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) throw new InvalidArgumentError(`${name} must be an http(s) URL, got "${value}"`);
  return value;
};

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A commander parser for a number option within `limit` (params.ts LIMITS). */
export const within = (name: string, limit: Limit) => (value: string): number => {
  const x = DECIMAL.test(value) ? Number(value) : NaN;
  const broken = outOfRange(x, limit);
  if (broken) throw new InvalidArgumentError(`${name} ${broken}, got "${value}"`);
  return x;
};

/** A commander parser for a comma-separated list of at most `max` values, each parsed by `parse`. */
export const list = <T>(parse: (v: string) => T, max = 50) => (value: string): T[] => {
  const values = value.split(",").map((v) => parse(v.trim()));
  if (values.length > max) throw new InvalidArgumentError(`at most ${max} values, got ${values.length}`);
  return values;
};
