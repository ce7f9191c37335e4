import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";

/** Microsoft's 2022-10-01 swagger for Azure ML, vendored in ../shared (absent on machines without it). */
export const SWAGGER_DIR = path.resolve(__dirname, "..", "..", "..", "shared", "spec", "azure-rest-2022-10-01");
const FILES: Record<string, string> = {
  "mfe.json": "mfe.json", "machineLearningServices.json": "machineLearningServices.json",
  "types.json": "common-types-v3-types.json", "managedidentity.json": "common-types-v3-managedidentity.json",
};

type Json = any; // swagger documents, walked generically
/** A request as the tests' ARM server records it. */
export interface SentRequest { method: string; path: string; query: URLSearchParams; body?: unknown }
interface Operation { method: string; template: string; regex: RegExp; names: string[]; params: Json[]; body?: string }

/** What to keep of a swagger schema: validation keywords (descriptions, examples, defaults and x-ms-* are only for people and generators). */
const KEEP = ["type", "required", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "uniqueItems", "format"];

/**
 * Checks requests against the swagger as an ARM client must satisfy it: the operation exists for the method and
 * path, path parameters and api-version are valid, and the body matches the operation's schema, where swagger's
 * `discriminator` / `x-ms-discriminator-value` pick the subtype (jobType, jobInputType, endpointComputeType, ...),
 * `additionalProperties: false` holds across allOf (as unevaluatedProperties), and readOnly properties are refused.
 */
export function swaggerValidator(dir = SWAGGER_DIR): ((r: SentRequest) => string[]) | undefined {
  if (!existsSync(path.join(dir, "mfe.json"))) return undefined;
  const docs: Record<string, Json> = {};
  for (const [key, file] of Object.entries(FILES)) docs[key] = JSON.parse(readFileSync(path.join(dir, file), "utf8"));
  const fileOf = (ref: string, from: string) => {
    const file = ref.split("#")[0];
    if (!file) return from;
    const key = path.posix.basename(file);
    if (!docs[key]) throw new Error(`swagger $ref to an unknown file: ${ref}`);
    return key;
  };
  const target = (ref: string, from: string) => `${fileOf(ref, from)}:${ref.split("#/definitions/")[1]}`;

  // Discriminated bases and their subtypes (definitions whose allOf names the base).
  const subtypes = new Map<string, Map<string, string>>();
  const allOfParents = new Set<string>();
  for (const [file, doc] of Object.entries(docs)) {
    for (const [name, def] of Object.entries<Json>(doc.definitions ?? {})) {
      if (def.discriminator && !subtypes.has(`${file}:${name}`)) subtypes.set(`${file}:${name}`, new Map());
      for (const parent of def.allOf ?? []) {
        if (!parent.$ref) continue;
        const base = target(parent.$ref, file);
        allOfParents.add(base);
        const [baseFile, baseName] = base.split(":");
        if (docs[baseFile].definitions[baseName].discriminator) {
          if (!subtypes.has(base)) subtypes.set(base, new Map());
          subtypes.get(base)!.set(def["x-ms-discriminator-value"] ?? name, `${file}:${name}`);
        }
      }
    }
  }

  const convert = (schema: Json, file: string, inAllOf = false): Json => {
    if (schema.$ref) {
      const t = target(schema.$ref, file);
      return { $ref: `#/$defs/${subtypes.has(t) && inAllOf ? `${t}.base` : t}` };
    }
    const out: Json = {};
    for (const k of KEEP) if (schema[k] !== undefined) out[k] = schema[k];
    if (schema.exclusiveMinimum === true) { out.exclusiveMinimum = schema.minimum; delete out.minimum; }
    if (schema.exclusiveMaximum === true) { out.exclusiveMaximum = schema.maximum; delete out.maximum; }
    if (schema.properties) {
      out.properties = Object.fromEntries(Object.entries<Json>(schema.properties).map(([k, p]) => [k, p.readOnly ? false : convert(p, file)]));
    }
    if (schema.items) out.items = convert(schema.items, file);
    if (typeof schema.additionalProperties === "object") out.additionalProperties = convert(schema.additionalProperties, file);
    if (schema.allOf) out.allOf = schema.allOf.map((s: Json) => convert(s, file, true));
    return schema["x-nullable"] ? { anyOf: [out, { type: "null" }] } : out;
  };
  const $defs: Record<string, Json> = {};
  for (const [file, doc] of Object.entries(docs)) {
    for (const [name, def] of Object.entries<Json>(doc.definitions ?? {})) {
      const key = `${file}:${name}`;
      const own = convert(def, file);
      // additionalProperties: false means "nothing but the properties of this type and its allOf parents"; a parent cannot say it of its children.
      if (def.additionalProperties === false && !allOfParents.has(key)) own.unevaluatedProperties = false;
      const subs = subtypes.get(key);
      if (!subs) { $defs[key] = own; continue; }
      const d = def.discriminator;
      $defs[`${key}.base`] = own;
      $defs[key] = {
        type: "object", required: [d], properties: { [d]: { enum: [...subs.keys()] } },
        allOf: [...subs].map(([value, sub]) => ({ if: { properties: { [d]: { const: value } }, required: [d] }, then: { $ref: `#/$defs/${sub}` } })),
      };
    }
  }

  const ajv = new Ajv2020({ strict: false, allErrors: true, unicodeRegExp: false });
  const duration = /^P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$/;
  ajv.addFormat("duration", duration);
  ajv.addFormat("uuid", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  ajv.addFormat("uri", { validate: (s: string) => URL.canParse(s) });
  ajv.addFormat("date-time", { validate: (s: string) => !Number.isNaN(Date.parse(s)) });
  ajv.addFormat("int32", { type: "number", validate: (x: number) => Number.isInteger(x) && Math.abs(x) < 2 ** 31 });
  ajv.addFormat("int64", { type: "number", validate: (x: number) => Number.isInteger(x) });
  for (const f of ["float", "double", "byte", "password", "arm-id", "unixtime", "binary", "date"]) ajv.addFormat(f, true);
  ajv.addSchema({ $id: "swagger", $defs });

  const resolveParam = (p: Json, file: string): Json => {
    if (!p.$ref) return p;
    const [ref, name] = p.$ref.split("#/parameters/");
    return docs[fileOf(`${ref}#`, file)].parameters[name];
  };
  const operations: Operation[] = [];
  for (const file of ["mfe.json", "machineLearningServices.json"]) {
    for (const [template, item] of Object.entries<Json>(docs[file].paths)) {
      const names: string[] = [];
      const regex = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{([^}]+)\}/g, (_, n) => { names.push(n); return "([^/]+)"; })}$`);
      for (const [method, op] of Object.entries<Json>(item)) {
        if (method === "parameters") continue;
        const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map((p: Json) => resolveParam(p, file));
        const body = params.find((p) => p.in === "body")?.schema?.$ref;
        operations.push({ method: method.toUpperCase(), template, regex, names, params, body: body && target(body, file) });
      }
    }
  }
  const validators = new Map<string, ValidateFunction>();

  return (r: SentRequest) => {
    const label = `${r.method} ${r.path}`;
    const op = operations.find((o) => o.method === r.method && o.regex.test(r.path));
    if (!op) return [`${label}: no such operation in the swagger`];
    const problems: string[] = [];
    const values = op.regex.exec(r.path)!.slice(1).map(decodeURIComponent);
    for (const p of op.params.filter((x) => x.in === "path")) {
      const value = values[op.names.indexOf(p.name)];
      if (p.pattern && !new RegExp(p.pattern).test(value)) problems.push(`${label}: path parameter ${p.name} "${value}" does not match ${p.pattern}`);
      if (p.maxLength && value.length > p.maxLength) problems.push(`${label}: path parameter ${p.name} longer than ${p.maxLength}`);
    }
    for (const p of op.params.filter((x) => x.in === "query" && x.required)) if (!r.query.get(p.name)) problems.push(`${label}: missing query parameter ${p.name}`);
    for (const name of r.query.keys()) if (!op.params.some((p) => p.in === "query" && p.name === name)) problems.push(`${label}: unknown query parameter ${name}`);
    if (!op.body) {
      if (r.body !== undefined) problems.push(`${label}: the operation takes no body, got one`);
      return problems;
    }
    if (!validators.has(op.body)) validators.set(op.body, ajv.getSchema(`swagger#/$defs/${op.body}`)!);
    const validate = validators.get(op.body)!;
    if (!validate(r.body)) {
      // Noise: if/then reports the failed `if` of every other subtype, and x-nullable's anyOf its null branch.
      const noise = (e: { keyword: string; params: Json }) => e.keyword === "if" || e.keyword === "anyOf" || (e.keyword === "type" && e.params.type === "null");
      for (const e of validate.errors!.filter((e) => !noise(e))) problems.push(`${label}: ${op.body.split(":")[1]}${e.instancePath} ${e.keyword === "false schema" ? "is read-only: a client must not send it" : e.message}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ""}`);
    }
    return problems;
  };
}
