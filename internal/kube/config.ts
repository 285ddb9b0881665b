/**
 * Where the API server is and how to authenticate: a kubeconfig file when
 * one is named (the flag, else `KUBECONFIG`), otherwise the in-cluster
 * service account (token, CA and `KUBERNETES_SERVICE_HOST`), which is what
 * a pod of the driver uses.
 *
 * @module
 */
import { KubeConfig } from "@kubernetes/client-node";
import { StartupError } from "../errors/mod.ts";

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  const file = path || Deno.env.get("KUBECONFIG");
  if (!file && !Deno.env.get("KUBERNETES_SERVICE_HOST")) {
    throw new StartupError(
      "Not in a cluster (KUBERNETES_SERVICE_HOST is unset): give --kubeconfig",
    );
  }
  try {
    if (file) kc.loadFromFile(file);
    else kc.loadFromCluster();
  } catch (err) {
    const where = file ? `kubeconfig "${file}"` : "the in-cluster service account";
    throw new StartupError(`Cannot load ${where}: ${err instanceof Error ? err.message : err}`);
  }
  if (!kc.getCurrentCluster()) {
    throw new StartupError(`Cannot use kubeconfig "${file}": it has no current cluster`);
  }
  return kc;
}
