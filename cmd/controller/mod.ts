/**
 * `s3csi controller`: CSI Identity + Controller on a unix socket.
 * Wiring only: flags → ControllerConfig → internal/csi.
 *
 * @module
 */
import {
  bool,
  CSI_ROLE_FLAGS,
  int,
  logLevel,
  parseFlags,
  shutdownSignal,
  str,
  usage,
} from "../../internal/cli/mod.ts";
import type { FlagSpecs } from "../../internal/cli/mod.ts";
import { ControllerServer, CsiServer, IdentityServer } from "../../internal/csi/mod.ts";
import { credentialsFromEnv } from "../../internal/s3/credentials.ts";
import { log, setLevel } from "../../internal/log/mod.ts";
import { ClientCache, s3Readiness } from "../../internal/s3/client_cache.ts";

export const summary = "Serve CSI Identity + Controller (dynamic provisioning)";

const FLAGS: FlagSpecs = {
  ...CSI_ROLE_FLAGS,
  "aws-max-attempts": {
    type: "string",
    env: "AWS_MAX_ATTEMPTS",
    default: "3",
    help: "Attempts per S3 request, retries included",
  },
};

export async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, FLAGS);
  if (bool(values, "help")) {
    console.log(usage("s3csi controller [options]", FLAGS));
    return 0;
  }
  setLevel(logLevel(values));
  const region = str(values, "region")!;
  const clients = new ClientCache({
    endpointUrl: str(values, "s3-endpoint-url"),
    forcePathStyle: !bool(values, "virtual-hosted-style"),
    caBundlePath: str(values, "ca-bundle"),
    maxAttempts: int(values, "aws-max-attempts", { min: 1, max: 100 }),
    driverCredentials: credentialsFromEnv(),
  });
  const controller = new ControllerServer({ region, clientFactory: clients.factory() });
  const identity = new IdentityServer({
    controllerService: true,
    ready: s3Readiness(() => clients.get(undefined, region)),
  });
  const server = new CsiServer({
    identity: identity.handlers(),
    controller: controller.handlers(),
  });
  const { done } = shutdownSignal();
  await server.listen(str(values, "endpoint")!);
  log.info("controller started", { region, s3Endpoint: str(values, "s3-endpoint-url") ?? "aws" });
  const signal = await done;
  log.info("shutting down", { signal });
  await server.stop();
  return 0;
}
