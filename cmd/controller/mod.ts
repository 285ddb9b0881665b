/**
 * `s3csi controller`: CSI Identity + Controller on a unix socket.
 * Wiring only: flags → ControllerConfig → internal/csi.
 *
 * @module
 */
import {
  bool,
  int,
  parseFlags,
  shutdownSignal,
  str,
  usage,
  UsageError,
} from "../../internal/cli/mod.ts";
import type { FlagSpecs } from "../../internal/cli/mod.ts";
import { ControllerServer, CsiServer, IdentityServer } from "../../internal/csi/mod.ts";
import { credentialsFromEnv } from "../../internal/csi/credentials.ts";
import { type Level, log, setLevel } from "../../internal/log/mod.ts";
import { ClientCache, s3Readiness } from "../../internal/s3/client_cache.ts";

export const summary = "Serve CSI Identity + Controller (dynamic provisioning)";

const FLAGS: FlagSpecs = {
  endpoint: {
    type: "string",
    default: "unix:///csi/csi.sock",
    env: "CSI_ENDPOINT",
    help: "CSI socket to listen on",
  },
  "s3-endpoint-url": {
    type: "string",
    env: "AWS_ENDPOINT_URL",
    help: "S3 endpoint URL (AWS endpoints when unset)",
  },
  region: { type: "string", default: "us-east-1", env: "AWS_REGION", help: "Default S3 region" },
  "virtual-hosted-style": {
    type: "boolean",
    help: "Use virtual-hosted-style addressing instead of path-style",
  },
  "ca-bundle": { type: "string", env: "AWS_CA_BUNDLE", help: "PEM file of extra trusted CAs" },
  "aws-max-attempts": {
    type: "string",
    env: "AWS_MAX_ATTEMPTS",
    default: "3",
    help: "Attempts per S3 request, retries included",
  },
  "log-level": {
    type: "string",
    default: "info",
    env: "S3CSI_LOG_LEVEL",
    help: "debug, info, warn or error",
  },
  help: { type: "boolean", short: "h", help: "Show this help" },
};

export async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, FLAGS);
  if (bool(values, "help")) {
    console.log(usage("s3csi controller [options]", FLAGS));
    return 0;
  }
  const level = str(values, "log-level")!;
  if (!["debug", "info", "warn", "error"].includes(level)) {
    throw new UsageError(`Invalid value for --log-level: "${level}"`);
  }
  setLevel(level as Level);
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
