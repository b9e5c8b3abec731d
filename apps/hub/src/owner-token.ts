/**
 * The owner token guards every person action on the HTTP API. It lives in <dataDir>/owner-token
 * (mode 0600) so the CLI on the same machine finds it; FIRMWARD_OWNER_TOKEN overrides and is
 * stored, so the CLI and hub agree after a restart without the variable.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FirmwardError } from '@firmward/core';
import { writeSecretFile } from './secret-file.ts';

export const OWNER_TOKEN_FILE = 'owner-token';
/** Same token68 alphabet the Bearer scheme allows (and config.ts checks). */
const TOKEN_PATTERN = /^[A-Za-z0-9._~+/-]+=*$/;

/**
 * Returns the owner token: `envToken` when given (and stores it), else the stored one, else a
 * fresh 32-byte random token written atomically with mode 0600. `created` is true only for a
 * fresh token, which the hub prints once.
 *
 * @example
 * const { token, created } = ensureOwnerToken(config.dataDir, config.ownerToken);
 * if (created) console.log(`Owner token (keep it secret): ${token}`);
 */
export function ensureOwnerToken(dataDir: string, envToken: string | null | undefined): { token: string; created: boolean } {
  const file = join(dataDir, OWNER_TOKEN_FILE);
  const stored = readStored(file);
  if (envToken !== undefined && envToken !== null && envToken !== '') {
    if (!TOKEN_PATTERN.test(envToken)) {
      throw new FirmwardError('config_invalid', 'FIRMWARD_OWNER_TOKEN may only contain letters, digits and . _ ~ + / - (with = at the end).');
    }
    if (stored !== envToken) writeAtomically(file, envToken);
    return { token: envToken, created: false };
  }
  if (stored !== null && TOKEN_PATTERN.test(stored)) {
    // Someone may have copied the file with looser permissions; a readable token is a leaked one.
    chmodSync(file, 0o600);
    return { token: stored, created: false };
  }
  const token = randomBytes(32).toString('base64url');
  writeAtomically(file, token);
  return { token, created: true };
}

function readStored(file: string): string | null {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return text === '' ? null : text;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new FirmwardError('config_invalid', `The hub cannot read its owner token at ${file}; check the folder's permissions.`, { cause: error });
  }
}

/** Write-to-temp, fsync, rename: a crash leaves either the old token or the new one, never half of one. */
function writeAtomically(file: string, token: string): void {
  try {
    writeSecretFile(file, `${token}\n`);
  } catch (error) {
    throw new FirmwardError('config_invalid', `The hub cannot write its owner token to ${file}; check that the data folder is writable.`, { cause: error });
  }
}
