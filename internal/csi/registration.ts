/**
 * Kubelet plugin registration, served by the node plugin itself where no
 * node-driver-registrar sidecar runs.
 *
 * The kubelet watches `<kubelet>/plugins_registry/` and, for each socket that
 * appears there, calls the `pluginregistration.Registration` service on it:
 * `GetInfo` tells it this is a CSI plugin, its name, and where its CSI socket
 * is *as the kubelet sees it on the host* (the node container may see the
 * same socket at another path, e.g. `/csi/csi.sock`); the kubelet then
 * checks the versions, connects to that socket (NodeGetInfo, to write the
 * CSINode object) and reports its verdict with `NotifyRegistrationStatus`,
 * which is only logged: a refused registration leaves nothing to retry here,
 * the kubelet tries again when the socket is re-created.
 *
 * Unregistering is removing the socket: the kubelet notices it is gone and
 * forgets the plugin. The socket is named `<driver>-reg.sock` (the kubelet
 * ignores names starting with a dot) and is owner-only: the kubelet is root.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { log as rootLog } from "../log/mod.ts";
import { listenUnix, stopGrpc } from "./server.ts";

const PROTO_PATH = new URL("../../proto/pluginregistration.proto", import.meta.url).pathname;

const log = rootLog.with({ component: "registration" });

/** The CSI spec version this driver implements, in the kubelet's spelling. */
export const CSI_VERSIONS = ["1.0.0"];

export interface RegistrationConfig {
  /** The CSI driver name (CSIDriver object, PV's `spec.csi.driver`). */
  driverName: string;
  /** The CSI socket path as the kubelet sees it on the host. */
  kubeletEndpoint: string;
  /** The kubelet's registration directory, as this process sees it. */
  registrationDir: string;
}

/** The kubelet's answer after GetInfo, as last notified. */
export type RegistrationState =
  | { state: "waiting" }
  | { state: "registered" }
  | { state: "refused"; error: string };

/** The Registration service, for the server here and for a client playing the kubelet in tests. */
export function registrationDefinition(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(PROTO_PATH, { keepCase: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    pluginregistration: { Registration: grpc.ServiceClientConstructor };
  };
  return pkg.pluginregistration.Registration;
}

/**
 * The socket's path for a driver in a registration directory: the kubelet's
 * convention `<driver>-reg.sock`.
 */
export function registrationSocket(registrationDir: string, driverName: string): string {
  return `${registrationDir.replace(/\/+$/, "")}/${driverName}-reg.sock`;
}

/**
 * The CSI socket as the kubelet sees it, when not given: the socket itself if
 * it already lies under the kubelet directory (the node runs on the host),
 * else the conventional `<kubelet>/plugins/<driver>/csi.sock`, where the node
 * container's socket directory is mounted from.
 */
export function defaultKubeletEndpoint(
  socketPath: string,
  kubeletPath: string,
  driverName: string,
): string {
  const root = kubeletPath.replace(/\/+$/, "");
  if (socketPath.startsWith(`${root}/`)) return socketPath;
  return `${root}/plugins/${driverName}/csi.sock`;
}

export class RegistrationServer {
  readonly #config: RegistrationConfig;
  readonly #server = new grpc.Server();
  #path = "";
  #state: RegistrationState = { state: "waiting" };

  constructor(config: RegistrationConfig) {
    this.#config = config;
    this.#server.addService(registrationDefinition().service, {
      GetInfo: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
        log.info("kubelet asked for plugin info", { endpoint: config.kubeletEndpoint });
        callback(null, {
          type: "CSIPlugin",
          name: config.driverName,
          endpoint: config.kubeletEndpoint,
          supported_versions: CSI_VERSIONS,
        });
      },
      NotifyRegistrationStatus: (
        call: grpc.ServerUnaryCall<{ plugin_registered: boolean; error: string }, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        const { plugin_registered: registered, error } = call.request;
        if (registered) {
          this.#state = { state: "registered" };
          log.info("registered with the kubelet", { driver: config.driverName });
        } else {
          this.#state = { state: "refused", error: error || "no reason given" };
          log.error("the kubelet refused the registration", {
            driver: config.driverName,
            error: this.#state.error,
          });
        }
        callback(null, {});
      },
    });
  }

  /** What the kubelet said last. */
  get state(): RegistrationState {
    return this.#state;
  }

  /** Serves the registration socket, replacing a stale one. Returns its path. */
  async listen(): Promise<string> {
    const path = registrationSocket(this.#config.registrationDir, this.#config.driverName);
    this.#path = await listenUnix(this.#server, path, 0o600);
    log.info("registration socket served", {
      socket: this.#path,
      endpoint: this.#config.kubeletEndpoint,
    });
    return this.#path;
  }

  /** Unregisters: stops serving and removes the socket, which makes the kubelet drop the plugin. */
  async stop(graceMs = 2000): Promise<void> {
    await stopGrpc(this.#server, this.#path, graceMs);
    log.info("registration socket removed", { socket: this.#path });
  }
}
