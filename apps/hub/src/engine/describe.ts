import { FirmwardError } from '@firmward/core';

/** An error as one line for the log. */
export function describe(error: unknown): string {
  if (error instanceof FirmwardError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
