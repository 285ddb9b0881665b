/**
 * CSI Identity service, served by every role.
 *
 * `Probe` answers `ready` from a check the role passes, so a liveness probe
 * restarts a pod that cannot serve. The controller's check (`s3Readiness`)
 * sends S3 a HEAD and caches the answer for a few seconds: not ready on a
 * network failure (S3's RequestTimeout included) or a server error (HTTP 500
 * and the other 5xx, but 503, which is throttling), ready on any other
 * answer (404, 403, 503 alike). The node's check is that /dev/fuse exists
 * and is a character device.
 * Neither check rejects, so Probe always answers `ready: true` or `false`;
 * were a check to throw, its error would become the RPC's status through the
 * one mapping (`grpc_status.ts`).
 *
 * @module
 */
import type { ServiceImpl } from "./server.ts";
import { DRIVER_NAME, VERSION } from "../version.ts";

export interface IdentityConfig {
  /** Advertise CONTROLLER_SERVICE (the controller role; also the node for csi-sanity's combined runs). */
  controllerService: boolean;
  /** Resolves true when the role is ready to serve (see the module note for the checks in use). */
  ready: () => Promise<boolean>;
}

export class IdentityServer {
  readonly #config: IdentityConfig;

  constructor(config: IdentityConfig) {
    this.#config = config;
  }

  handlers(): ServiceImpl {
    return {
      GetPluginInfo: () =>
        Promise.resolve({ name: DRIVER_NAME, vendor_version: VERSION, manifest: {} }),
      GetPluginCapabilities: () => Promise.resolve(this.capabilities()),
      Probe: async () => ({ ready: { value: await this.#config.ready() } }),
    };
  }

  capabilities() {
    const caps = [];
    if (this.#config.controllerService) caps.push({ service: { type: "CONTROLLER_SERVICE" } });
    return { capabilities: caps };
  }
}
