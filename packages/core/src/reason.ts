/**
 * A reason is why the hub decided something, in one sentence a householder understands, with a
 * stable code for machines. Every decision the hub takes carries at least one.
 */
export interface Reason {
  code: string;
  message: string;
}

export function reason(code: string, message: string): Reason {
  return { code, message };
}
