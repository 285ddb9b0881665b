/**
 * The image Mountpoint Pods run is the reconciler's own, so that both are
 * always the same build. When no `--image` is given it is read from the
 * reconciler's pod (named by the downward API): a deployment that changes
 * the image (kustomize `images:`, `kubectl set image`) then needs no second
 * edit in the arguments.
 *
 * @module
 */
import type { V1Pod } from "@kubernetes/client-node";
import { StartupError } from "../errors/mod.ts";
import { type KubeApi, RESOURCES } from "../kube/mod.ts";

/** The image of the container of pod `namespace/name` that runs `s3csi reconciler`. */
export async function ownImage(api: KubeApi, namespace: string, name: string): Promise<string> {
  const pod = await api.get<V1Pod>(RESOURCES.pod, name, namespace);
  const containers = pod?.spec?.containers ?? [];
  const self = containers.find((c) =>
    [...(c.command ?? []), ...(c.args ?? [])].includes("reconciler")
  );
  if (!self?.image) {
    throw new StartupError(
      `Cannot find the reconciler's image in pod "${namespace}/${name}": give --image`,
    );
  }
  return self.image;
}
