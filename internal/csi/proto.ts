/**
 * Loads `proto/csi.proto` once and exposes the CSI service definitions.
 *
 * Field names keep the proto's snake_case (`keepCase`), enums arrive as their
 * names, int64 as JS numbers (capacities fit in 2^53), and `oneofs` exposes
 * the chosen member (`access_type: "mount" | "block"`). The path is resolved
 * from this module so that `deno compile --include proto/` finds it.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTO_PATH = new URL("../../proto/csi.proto", import.meta.url).pathname;

let cached: CsiDefinitions | undefined;

export interface CsiDefinitions {
  Identity: grpc.ServiceClientConstructor;
  Controller: grpc.ServiceClientConstructor;
  Node: grpc.ServiceClientConstructor;
}

export function csiDefinitions(): CsiDefinitions {
  if (cached) return cached;
  const def = protoLoader.loadSync(PROTO_PATH, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    csi: { v1: CsiDefinitions };
  };
  cached = pkg.csi.v1;
  return cached;
}
