/**
 * The CLI's exit codes: one number per kind of outcome, so a script can tell "try again later"
 * from "fix the command" from "somebody else is in the way". Mapped from the FirmwardError code
 * the hub answered with (the client carries it unchanged), only here (STYLE principle 8).
 */
import { FirmwardError } from '@firmward/core';
import type { ErrorCode } from '@firmward/core';

export const EXIT = {
  /** Done. */
  ok: 0,
  /** The hub refused for another reason (invalid input, incompatible, …), or something unexpected broke. */
  refused: 1,
  /** The command line is wrong: unknown command or option, a missing --yes, a bad argument. */
  usage: 2,
  /** The hub cannot be reached, or keeps saying it is starting. */
  unreachable: 3,
  /** Not allowed: no or a wrong owner token, or too many attempts. */
  notAllowed: 4,
  /** There is no such home, device, code, repository or bridge. */
  notFound: 5,
  /** Something else is in the way: an update installing, a request decided already, a name taken. */
  conflict: 6,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Every code not listed is 1: the hub said no, and its sentence says why. */
const EXIT_OF_CODE: Partial<Record<ErrorCode, ExitCode>> = {
  hub_unreachable: EXIT.unreachable,
  not_ready: EXIT.unreachable,
  unauthorized: EXIT.notAllowed,
  forbidden: EXIT.notAllowed,
  too_many_attempts: EXIT.notAllowed,
  not_found: EXIT.notFound,
  conflict: EXIT.conflict,
  home_busy: EXIT.conflict,
  update_in_progress: EXIT.conflict,
  cancel_too_late: EXIT.conflict,
  queue_halted: EXIT.conflict,
  queue_not_halted: EXIT.conflict,
  illegal_transition: EXIT.conflict,
};

/**
 * A refusal of the command line itself, before the hub is asked (exit 2).
 *
 * @example
 * throw usageError('Deleting a home needs --yes.');
 */
export function usageError(message: string): FirmwardError {
  return new FirmwardError('invalid_input', message, { detail: { usage: true } });
}

/**
 * @example
 * exitCodeOf(new FirmwardError('not_found', 'There is no device "x".')); // 5
 */
export function exitCodeOf(error: FirmwardError): ExitCode {
  if (error.detail?.['usage'] === true) return EXIT.usage;
  return EXIT_OF_CODE[error.code] ?? EXIT.refused;
}

/** The table in `firmward --help` (docs/cli.md has the same). */
export const EXIT_CODES_HELP = `
Exit codes:
  0  done
  1  the hub refused for another reason (invalid input, incompatible, …), or an unexpected error
  2  usage: unknown command or option, a missing --yes, a bad argument
  3  the hub cannot be reached, or it kept saying it is starting
  4  not allowed: no or a wrong owner token, too many attempts
  5  not found: no such home, device, code, repository or bridge
  6  conflict: an update is installing, the request was decided already, the home is busy, …
  (watch exits 1 when an update it followed did not succeed; "firmward release …" exits 1 on any refusal)

The hub is found at: --hub, else FIRMWARD_HUB, else the address the hub wrote to
<FIRMWARD_DATA_DIR or ./data>/hub-url, else http://127.0.0.1:$FIRMWARD_PORT, else http://127.0.0.1:8080.
`;
