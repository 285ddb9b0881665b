/**
 * Where the API server is and how to authenticate: a kubeconfig file when
 * one is named (the flag, else `KUBECONFIG`), otherwise the in-cluster
 * service account (token, CA and `KUBERNETES_SERVICE_HOST`), which is what
 * a pod of the driver uses. The reconciler cannot work without it
 * (`loadKubeConfig`); the node can, outside a cluster (`findKubeConfig`).
 *
 * @module
 */
import { KubeConfig } from "@kubernetes/client-node";
import { errorMessage, StartupError } from "../errors/mod.ts";

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/**
 * The API access this process has, or undefined when it has none (no
 * kubeconfig named, and not in a pod with a service-account token).
 * Throws `StartupError` when a named kubeconfig cannot be used.
 */
export function findKubeConfig(path?: string): KubeConfig | undefined {
  const kc = new KubeConfig();
  const file = path || Deno.env.get("KUBECONFIG");
  if (!file) {
    if (!Deno.env.get("KUBERNETES_SERVICE_HOST")) return undefined;
    try {
      Deno.statSync(SERVICE_ACCOUNT_TOKEN);
    } catch {
      return undefined;
    }
  }
  try {
    if (file) kc.loadFromFile(file);
    else kc.loadFromCluster();
  } catch (err) {
    const where = file ? `kubeconfig "${file}"` : "the in-cluster service account";
    throw new StartupError(`Cannot load ${where}: ${errorMessage(err)}`);
  }
  if (!kc.getCurrentCluster()) {
    throw new StartupError(`Cannot use kubeconfig "${file}": it has no current cluster`);
  }
  return kc;
}

/** The API access this process must have: `StartupError` naming what is missing otherwise. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = findKubeConfig(path);
  if (!kc) {
    throw new StartupError(
      "Not in a cluster (no KUBERNETES_SERVICE_HOST or no service-account token): give --kubeconfig",
    );
  }
  return kc;
}

/**
 * A copy of `kc` whose requests act as `user` (the Impersonate-User header):
 * how the doctor asks what a driver service account may do. The current
 * user needs the `impersonate` verb on that user.
 */
export function impersonating(kc: KubeConfig, user: string): KubeConfig {
  const current = kc.getCurrentUser()?.name;
  const out = new KubeConfig();
  out.loadFromOptions({
    clusters: kc.clusters,
    users: kc.users.map((u) => u.name === current ? { ...u, impersonateUser: user } : u),
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return out;
}
