/**
 * CSI Identity service, served by every role.
 *
 * `Probe` reports real readiness: the role passes a check (the controller
 * verifies that S3 answers; the node that /dev/fuse opens) and Probe answers
 * `ready: false` while it fails, or FAILED_PRECONDITION for a permanent
 * misconfiguration, so liveness probes restart a broken pod.
 *
 * @module
 */
import type { ServiceImpl } from "./server.ts";
import { DRIVER_NAME, VERSION } from "../version.ts";

export interface IdentityConfig {
  /** Advertise CONTROLLER_SERVICE (the controller role; also the node for csi-sanity's combined runs). */
  controllerService: boolean;
  /** Resolves true when the role is ready to serve; may throw a domain error. */
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
