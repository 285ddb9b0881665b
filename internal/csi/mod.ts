/**
 * The CSI layer: gRPC server, Identity, Controller (and, later, Node)
 * services. Services are plain classes whose `handlers()` the `CsiServer`
 * wraps with logging and error mapping.
 *
 * @module
 */
export { CsiServer, socketPath } from "./server.ts";
export { IdentityServer } from "./identity_server.ts";
export { type ClientFactory, ControllerServer, parseStorageParams } from "./controller_server.ts";
export { csiDefinitions } from "./proto.ts";
