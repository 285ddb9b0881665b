/**
 * The CSI layer, as the roles wire it: the gRPC server and the Identity,
 * Controller and Node services. Services are plain classes whose
 * `handlers()` the `CsiServer` wraps with logging and the one error mapping
 * (`grpc_status.ts`).
 *
 * @module
 */
export { CsiServer } from "./server.ts";
export { IdentityServer } from "./identity_server.ts";
export { ControllerServer } from "./controller_server.ts";
export { NodeServer } from "./node_server.ts";
