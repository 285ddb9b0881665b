/**
 * The Kubernetes API as the reconciler sees it: a narrow `KubeApi`
 * (`api.ts`) with its client-node implementation (`client.ts`), how the
 * connection is configured (`config.ts`), and the attachment custom
 * resource's types (`attachment.ts`). `fake_api.ts` is the in-memory double
 * the tests run against.
 *
 * @module
 */
export * from "./api.ts";
export * from "./attachment.ts";
export { KubeClient } from "./client.ts";
export { findKubeConfig, impersonating, loadKubeConfig } from "./config.ts";
