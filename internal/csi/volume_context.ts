/**
 * Keys shared between the controller, the node and static PersistentVolumes:
 * StorageClass parameters, volume-context attributes and secret keys. Kept in
 * one place so the three sides can never drift apart.
 *
 * @module
 */

/** StorageClass `parameters` understood by CreateVolume. */
export const Param = {
  bucketNaming: "bucketNaming",
  bucketName: "bucketName",
  s3Region: "s3Region",
} as const;

/** Every `csi.storage.k8s.io/` key is reserved for Kubernetes and the sidecars. */
export const RESERVED_PARAM_PREFIX = "csi.storage.k8s.io/";

/** Attributes of `volume_context` (dynamic volumes) and `volumeAttributes` (static PVs). */
export const Ctx = {
  bucketName: "bucketName",
  prefix: "prefix",
  region: "region",
  authenticationSource: "authenticationSource",
  dynamicProvisioning: "dynamicProvisioning",
  bucketNaming: "bucketNaming",
  podUid: "csi.storage.k8s.io/pod.uid",
  podName: "csi.storage.k8s.io/pod.name",
  podNamespace: "csi.storage.k8s.io/pod.namespace",
  ephemeral: "csi.storage.k8s.io/ephemeral",
} as const;

export type AuthenticationSource = "driver" | "secret";

/** Keys of provisioner and node-publish secrets. */
export const SecretKey = {
  accessKeyId: "access_key_id",
  secretAccessKey: "secret_access_key",
  sessionToken: "session_token",
} as const;
