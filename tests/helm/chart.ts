/**
 * The Helm chart as the tests use it: `helm` (pinned, built by
 * `scripts/tools.sh`, found through `HELM_BIN`) run on `deploy/helm/s3csi`,
 * with a private HOME so no user configuration or repository leaks in.
 *
 * @module
 */
import { loadAllYaml } from "@kubernetes/client-node";

export const CHART = new URL("../../deploy/helm/s3csi", import.meta.url).pathname;

/** The least a values set needs: the endpoint the schema requires. */
export const REQUIRED = ["--set", "s3.endpointUrl=https://s3.example.com"];

// deno-lint-ignore no-explicit-any
export type Obj = Record<string, any>;

export function helmBin(): string {
  const bin = Deno.env.get("HELM_BIN");
  if (!bin) throw new Error("HELM_BIN is not set: run through scripts/test");
  return bin;
}

let home: string | undefined;

/** Runs helm; `env` adds to a clean environment (KUBECONFIG for a cluster). */
export async function helm(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  home ??= await Deno.makeTempDir({ prefix: "s3csi-helm-home-" });
  const o = await new Deno.Command(helmBin(), {
    args,
    clearEnv: true,
    env: { HOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

/** `helm template` of the chart with `args`; throws with helm's message on failure. */
export async function render(args: string[] = REQUIRED): Promise<Obj[]> {
  // Comment-only documents (a template's note before its first `---`) hold no object.
  const docs = (await renderText(args)).split(/^---\s*$/m).filter((d) => /^[^#\s]/m.test(d));
  return docs.flatMap((d) => loadAllYaml(d) as Obj[]).filter((o) => o);
}

/** The manifest text `helm template` renders in `namespace` (for kubectl apply). */
export async function renderText(args: string[], namespace = "s3csi"): Promise<string> {
  const r = await helm(["template", "s3csi", CHART, "--namespace", namespace, ...args]);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.err}`);
  return r.out;
}
