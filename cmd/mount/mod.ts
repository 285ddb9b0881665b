/** `s3csi mount`: wiring only (see internal/). */
import { UsageError } from "../../internal/cli/mod.ts";

export const summary = "Mount (not yet implemented)";

export function main(_args: string[]): Promise<number> {
  return Promise.reject(new UsageError("the mount role is not implemented yet"));
}
