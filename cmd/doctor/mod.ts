/** `s3csi doctor`: wiring only (see internal/). */
import { UsageError } from "../../internal/cli/mod.ts";

export const summary = "Doctor (not yet implemented)";

export function main(_args: string[]): Promise<number> {
  return Promise.reject(new UsageError("the doctor role is not implemented yet"));
}
