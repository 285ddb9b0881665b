/**
 * `s3csi controller`: CSI Identity + Controller on a unix socket.
 * Wiring only: flags → ControllerConfig → internal/csi.
 *
 * @module
 */
import {
  bool,
  CSI_ROLE_FLAGS,
  type FlagSpecs,
  logLevel,
  metricsAddress,
  parseFlags,
  s3Connection,
  shutdownSignal,
  str,
  usage,
} from "../../internal/cli/mod.ts";
import { ControllerServer, CsiServer, IdentityServer } from "../../internal/csi/mod.ts";
import { credentialsFromEnv } from "../../internal/s3/credentials.ts";
import { log, setLevel } from "../../internal/log/mod.ts";
import { ClientCache, s3Readiness } from "../../internal/s3/client_cache.ts";
import { MetricsServer } from "../../internal/metrics/mod.ts";

const FLAGS: FlagSpecs = {
  ...CSI_ROLE_FLAGS,
  "aws-max-attempts": { ...CSI_ROLE_FLAGS["aws-max-attempts"], default: "3" },
};

export async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, FLAGS);
  if (bool(values, "help")) {
    console.log(usage("s3csi controller [options]", FLAGS));
    return 0;
  }
  setLevel(logLevel(values));
  // Path-style by default: S3-compatible stores need it, and AWS still serves it.
  const s3 = s3Connection(values, true);
  const region = s3.region;
  const clients = new ClientCache({ ...s3, driverCredentials: credentialsFromEnv() });
  const controller = new ControllerServer({ region, clientFactory: clients.factory() });
  const identity = new IdentityServer({
    controllerService: true,
    ready: s3Readiness(() => clients.get(undefined, region)),
  });
  const server = new CsiServer({
    identity: identity.handlers(),
    controller: controller.handlers(),
  });
  const metricsAt = metricsAddress(values);
  const metrics = metricsAt ? new MetricsServer(metricsAt) : undefined;
  const done = shutdownSignal();
  await server.listen(str(values, "endpoint")!);
  log.info("controller started", { region, s3Endpoint: s3.endpointUrl ?? "aws" });
  const signal = await done;
  log.info("shutting down", { signal });
  await server.stop();
  await metrics?.stop();
  return 0;
}
