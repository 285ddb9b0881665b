/**
 * The README's table of chart values, generated from `values.schema.json`
 * (names and descriptions) and `values.yaml` (defaults), so the table cannot
 * drift from the chart: `chart_test.ts` checks the README holds exactly this
 * table. Regenerate with `deno run -A tests/helm/values_table.ts`.
 *
 * @module
 */
import { loadYaml } from "@kubernetes/client-node";

const CHART = new URL("../../deploy/helm/s3csi/", import.meta.url);
export const BEGIN = "<!-- helm-values:begin (tests/helm/values_table.ts) -->";
export const END = "<!-- helm-values:end -->";

// deno-lint-ignore no-explicit-any
type Json = any;

/** Leaves of the schema: scalars, arrays, and objects with free keys. */
function leaves(schema: Json, path: string[] = []): { path: string[]; schema: Json }[] {
  if (schema.type === "object" && schema.properties && schema.additionalProperties === false) {
    return Object.entries(schema.properties).flatMap(([k, s]) => leaves(s, [...path, k]));
  }
  return [{ path, schema }];
}

function lookup(values: Json, path: string[]): unknown {
  return path.reduce((v, k) => (v === undefined || v === null ? undefined : v[k]), values);
}

function show(v: unknown): string {
  if (v === undefined) return "";
  if (typeof v === "string") return v === "" ? '`""`' : `\`${v}\``;
  return `\`${JSON.stringify(v)}\``;
}

function describe(schema: Json): string {
  const parts = [schema.description ?? ""];
  if (schema.enum) parts.push(`one of ${schema.enum.map((e: string) => `\`${e}\``).join(", ")}`);
  return parts.filter(Boolean).join("; ").replaceAll("|", "\\|");
}

export async function valuesTable(): Promise<string> {
  const schema = JSON.parse(await Deno.readTextFile(new URL("values.schema.json", CHART)));
  const values = loadYaml(await Deno.readTextFile(new URL("values.yaml", CHART)));
  const rows = leaves(schema).map((l) =>
    `| \`${l.path.join(".")}\` | ${show(lookup(values, l.path))} | ${describe(l.schema)} |`
  );
  return [BEGIN, "| value | default | meaning |", "| --- | --- | --- |", ...rows, END].join("\n");
}

if (import.meta.main) console.log(await valuesTable());
