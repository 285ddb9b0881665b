/** Build identity, reported by `s3csi version` and GetPluginInfo. */
export const DRIVER_NAME = "s3.csi.scality.com";
/** Replaced at release time; `S3CSI_VERSION` overrides it for development builds. */
export const VERSION: string = Deno.env.get("S3CSI_VERSION") ?? "0.1.0";
