/**
 * `s3csi doctor`: preflight checks (internal/doctor). Wiring only: flags →
 * the check list of each group → run → table or JSON on stdout. Exit 0
 * when nothing failed, 1 when a check failed, 2 for bad usage (main.ts).
 *
 * @module
 */
import {
  bool,
  COMMON_FLAGS,
  type FlagSpecs,
  logLevel,
  oneOf,
  parseFlags,
  S3_FLAGS,
  s3Connection,
  str,
  uint,
  usage,
  UsageError,
} from "../../internal/cli/mod.ts";
import {
  type Check,
  clusterChecks,
  type Group,
  localChecks,
  nothingFailed,
  renderJson,
  renderTable,
  runChecks,
  s3Checks,
  warning,
} from "../../internal/doctor/mod.ts";
import { findKubeConfig, impersonating, KubeClient } from "../../internal/kube/mod.ts";
import { setLevel } from "../../internal/log/mod.ts";
import { credentialsFromEnv } from "../../internal/s3/credentials.ts";
import { errorMessage } from "../../internal/errors/mod.ts";

const GROUPS = ["local", "s3", "cluster"] as const;

/** A comma-separated list of check groups. */
const GROUP_LIST = {
  parse(raw: string): Group[] {
    const names = raw.split(",").map((s) => s.trim()).filter(Boolean);
    return names.map((n) => oneOf(GROUPS).parse(n));
  },
  format: (v: Group[]) => v.join(","),
};

const FLAGS: FlagSpecs = {
  json: { type: "boolean", help: "Print the results as JSON" },
  skip: {
    type: "string",
    kind: GROUP_LIST,
    help: "Groups of checks not to run: local, s3, cluster (comma-separated)",
  },
  "kubelet-dir": {
    type: "string",
    aliases: ["kubelet-path"],
    default: "/var/lib/kubelet",
    env: "KUBELET_PATH",
    help: "The kubelet root directory",
  },
  kubeconfig: {
    type: "string",
    env: "KUBECONFIG",
    help: "Kubeconfig file (default: the in-cluster service account; cluster checks need one)",
  },
  namespace: {
    type: "string",
    default: "s3csi",
    env: "POD_NAMESPACE",
    help: "The driver's namespace",
  },
  "node-name": {
    type: "string",
    aliases: ["node-id"],
    env: "CSI_NODE_NAME",
    help: "This node's name, for its taint (default: NODE_NAME)",
  },
  bucket: { type: "string", help: "A bucket the driver uses: auth and region are checked on it" },
  timeout: {
    type: "string",
    kind: uint({ min: 1, max: 600 }),
    default: "10",
    help: "Seconds each check may take",
  },
  ...S3_FLAGS,
  ...COMMON_FLAGS,
};

export async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, FLAGS);
  if (bool(values, "help")) {
    console.log(usage("s3csi doctor [options]", FLAGS));
    return 0;
  }
  // Logs go to stderr; keep them to warnings so the report stays readable.
  setLevel(bool(values, "debug") ? logLevel(values) : "warn");
  const skip = new Set((values.skip as Group[] | undefined) ?? []);
  const checks: Check[] = [];
  if (!skip.has("local")) checks.push(...localChecks({ kubeletDir: str(values, "kubelet-dir")! }));
  if (!skip.has("s3")) {
    const conn = s3Connection(values, true);
    const credentials = credentialsFromEnv();
    checks.push(...s3Checks({
      conn,
      ...(credentials ? { credentials } : {}),
      ...(str(values, "bucket") ? { bucket: str(values, "bucket")! } : {}),
    }));
  }
  if (!skip.has("cluster")) checks.push(...cluster(values));
  if (checks.length === 0) throw new UsageError("--skip leaves no check to run");

  const results = await runChecks(checks, { timeoutMs: (values.timeout as number) * 1000 });
  console.log(bool(values, "json") ? renderJson(results) : renderTable(results));
  return nothingFailed(results) ? 0 : 1;
}

/** The cluster checks, or one warning saying why there are none. */
function cluster(values: Record<string, unknown>): Check[] {
  let kc;
  try {
    kc = findKubeConfig(str(values, "kubeconfig"));
  } catch (err) {
    return [noCluster(errorMessage(err), "Fix --kubeconfig (KUBECONFIG)")];
  }
  if (!kc) {
    return [noCluster(
      "No kubeconfig and no in-cluster service account: cluster checks not run",
      "Give --kubeconfig, or run the doctor in a driver pod",
    )];
  }
  const config = kc;
  const nodeName = str(values, "node-name") ?? Deno.env.get("NODE_NAME");
  return clusterChecks({
    api: new KubeClient(config),
    as: (user) => new KubeClient(impersonating(config, user)),
    namespace: str(values, "namespace")!,
    ...(nodeName ? { nodeName } : {}),
  });
}

function noCluster(reason: string, action: string): Check {
  return {
    id: "cluster.config",
    group: "cluster",
    title: "Access to the Kubernetes API",
    run: () => Promise.resolve(warning(reason, action)),
  };
}
