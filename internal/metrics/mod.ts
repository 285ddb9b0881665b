/**
 * Prometheus metrics: the families (`families.ts`, every name defined once),
 * the HTTP endpoint (`server.ts`), and how a mount's figures reach the node's
 * endpoint with a `volume_id` label (`gather.ts`).
 *
 * @module
 */
export * from "./families.ts";
export { gather, readVolumeSocket, serveVolumeSocket, type VolumeSource } from "./gather.ts";
export { type MetricsAddress, MetricsServer, parseMetricsAddress } from "./server.ts";
