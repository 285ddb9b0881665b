/**
 * The test cluster as the cluster tier sees it: `scripts/cluster up` (which
 * builds what is missing, minutes on a fresh machine, so no timeout here), the
 * variables `scripts/cluster env` prints, kubectl, and pods run to completion.
 * End-to-end tests of the deployed driver are meant to build on this.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;
const SCRIPT = `${ROOT}scripts/cluster`;

/** What `scripts/cluster env` prints (the names it exports). */
export interface ClusterEnv {
  KUBECONFIG: string;
  KUBECTL: string;
  KUBECACHEDIR: string;
  S3CSI_CLUSTER_DIR: string;
  S3CSI_CLUSTER_API: string;
  S3CSI_CLUSTER_NODE: string;
  /** The host's address on the pod network: pods off the host network reach host servers there. */
  S3CSI_CLUSTER_HOST_IP: string;
  S3CSI_KUBELET_DIR: string;
  S3CSI_IMAGE: string;
  CSI_PROVISIONER_IMAGE: string;
  PAUSE_IMAGE: string;
  [name: string]: string;
}

/** Runs `scripts/cluster <cmd>` with its output on the test's output; throws on failure. */
async function script(cmd: "up" | "down"): Promise<void> {
  const { code } = await new Deno.Command(SCRIPT, {
    args: [cmd],
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new Error(`scripts/cluster ${cmd} exited with ${code}`);
}

/** Parses `export K=V` lines. */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

export async function clusterEnv(): Promise<ClusterEnv> {
  const out = await new Deno.Command(SCRIPT, { args: ["env"], stdin: "null" }).output();
  if (out.code !== 0) {
    throw new Error(`scripts/cluster env: ${new TextDecoder().decode(out.stderr)}`);
  }
  const env = parseEnv(new TextDecoder().decode(out.stdout));
  for (const name of ["KUBECONFIG", "KUBECTL", "S3CSI_CLUSTER_NODE", "S3CSI_IMAGE"]) {
    if (!env[name]) throw new Error(`scripts/cluster env does not give ${name}`);
  }
  return env as ClusterEnv;
}

export interface Cluster {
  env: ClusterEnv;
  /** Runs kubectl; returns stdout, throws with stderr on failure. */
  kubectl(args: string[], stdin?: string): Promise<string>;
  /** Creates `pod`, waits for it to end, returns its phase, node and log; deletes it. */
  runPod(pod: Pod): Promise<PodResult>;
}

/** The parts of a Pod manifest the tests set (plain JSON for kubectl). */
export interface Pod {
  apiVersion: "v1";
  kind: "Pod";
  metadata: { name: string; namespace?: string };
  spec: Record<string, unknown>;
}

export interface PodResult {
  phase: string;
  nodeName: string;
  log: string;
}

/** How long a pod may take to run to its end before the test gives up (not a timing assert). */
const POD_DEADLINE_MS = 180_000;

function connect(env: ClusterEnv): Cluster {
  const kubectl = async (args: string[], stdin?: string): Promise<string> => {
    const child = new Deno.Command(env.KUBECTL, {
      args,
      env: { KUBECONFIG: env.KUBECONFIG, KUBECACHEDIR: env.KUBECACHEDIR },
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(stdin));
      await w.close();
    }
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout);
    if (out.code !== 0) {
      throw new Error(`kubectl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
    return text;
  };

  const runPod = async (pod: Pod): Promise<PodResult> => {
    const ns = ["-n", pod.metadata.namespace ?? "default"];
    await kubectl(["apply", "-f", "-"], JSON.stringify(pod));
    try {
      const deadline = Date.now() + POD_DEADLINE_MS;
      for (;;) {
        const status = JSON.parse(
          await kubectl([...ns, "get", "pod", pod.metadata.name, "-o", "json"]),
        );
        const phase: string = status.status?.phase ?? "";
        if (phase === "Succeeded" || phase === "Failed") {
          const log = await kubectl([...ns, "logs", pod.metadata.name]);
          return { phase, nodeName: status.spec.nodeName, log };
        }
        if (Date.now() > deadline) {
          const describe = await kubectl([...ns, "describe", "pod", pod.metadata.name]);
          throw new Error(`pod ${pod.metadata.name} still ${phase || "pending"}:\n${describe}`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      await kubectl([...ns, "delete", "pod", pod.metadata.name, "--wait=false"]);
    }
  };

  return { env, kubectl, runPod };
}

/** Brings the cluster up (idempotent) and connects to it. */
export async function clusterUp(): Promise<Cluster> {
  await script("up");
  return connect(await clusterEnv());
}

/** Stops the cluster and restores the host; safe when nothing runs. */
export async function clusterDown(): Promise<void> {
  await script("down");
}
