/**
 * Where the hub is, and how the CLI knows: the address and the words that name its source, so a
 * hub that cannot be reached is reported with the address tried and where it came from.
 */
import { join } from 'node:path';
import { FirmwardError } from '@firmward/core';
import { usageError } from './exit-codes.ts';

export const DEFAULT_HUB = 'http://127.0.0.1:8080';
/** The file the hub writes into its data folder once it listens (apps/hub/src/hub.ts, HUB_URL_FILE). */
export const HUB_URL_FILE = 'hub-url';
const TOKEN_FILE = 'owner-token';

export interface HubAddress {
  url: string;
  /** "from --hub", "from FIRMWARD_HUB", "from data/hub-url", "from FIRMWARD_PORT", or why the default. */
  origin: string;
}

export interface AddressIo {
  env: Readonly<Record<string, string | undefined>>;
  readFile: (path: string) => string;
}

const HTTP_URL = /^https?:\/\/\S+$/;

function set(env: AddressIo['env'], name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** The hub's data folder as this machine sees it: FIRMWARD_DATA_DIR, else ./data (where the hub keeps it by default). */
export function dataDirOf(env: AddressIo['env']): string {
  return set(env, 'FIRMWARD_DATA_DIR') ?? './data';
}

/** The file's text, or null when there is none. */
function readIfThere(io: AddressIo, file: string): string | null {
  try {
    return io.readFile(file);
  } catch {
    return null;
  }
}

/**
 * --hub, else FIRMWARD_HUB, else the address the hub wrote to `<data dir>/hub-url`, else port
 * FIRMWARD_PORT on this machine, else http://127.0.0.1:8080.
 *
 * @example
 * resolveHub(undefined, { env: { FIRMWARD_PORT: '9000' }, readFile: () => { throw new Error('none'); } });
 * // { url: 'http://127.0.0.1:9000', origin: 'from FIRMWARD_PORT' }
 */
export function resolveHub(flag: string | undefined, io: AddressIo): HubAddress {
  if (flag !== undefined && flag !== '') return { url: flag, origin: 'from --hub' };
  const fromEnv = set(io.env, 'FIRMWARD_HUB');
  if (fromEnv !== undefined) {
    if (!HTTP_URL.test(fromEnv)) throw usageError(`FIRMWARD_HUB must be the hub's web address, such as http://127.0.0.1:8080; it is "${fromEnv}".`);
    return { url: fromEnv, origin: 'from FIRMWARD_HUB' };
  }
  const file = join(dataDirOf(io.env), HUB_URL_FILE);
  const written = readIfThere(io, file)?.trim().split('\n')[0]?.trim() ?? '';
  if (written !== '') {
    if (!HTTP_URL.test(written)) {
      throw new FirmwardError('config_invalid', `${file} does not hold the hub's address (it says "${written.slice(0, 80)}"); remove it, or pass --hub.`);
    }
    return { url: written, origin: `from ${file}` };
  }
  const port = set(io.env, 'FIRMWARD_PORT');
  if (port !== undefined) {
    const n = Number(port);
    if (!/^\d+$/.test(port) || n < 1 || n > 65535) throw usageError(`FIRMWARD_PORT must be a port number from 1 to 65535; it is "${port}".`);
    return { url: `http://127.0.0.1:${n}`, origin: 'from FIRMWARD_PORT' };
  }
  return { url: DEFAULT_HUB, origin: `the default: no --hub, FIRMWARD_HUB, ${file} or FIRMWARD_PORT` };
}

export interface OwnerToken {
  token: string;
  /** "from --token", "from FIRMWARD_OWNER_TOKEN" or "from data/owner-token". */
  origin: string;
}

/** --token, else FIRMWARD_OWNER_TOKEN, else the token file the hub wrote into its data folder. */
export function resolveOwnerToken(flag: string | undefined, io: AddressIo): OwnerToken {
  if (flag !== undefined && flag !== '') return { token: flag, origin: 'from --token' };
  const fromEnv = set(io.env, 'FIRMWARD_OWNER_TOKEN');
  if (fromEnv !== undefined) return { token: fromEnv, origin: 'from FIRMWARD_OWNER_TOKEN' };
  const file = join(dataDirOf(io.env), TOKEN_FILE);
  const token = readIfThere(io, file)?.trim() ?? '';
  if (token !== '') return { token, origin: `from ${file}` };
  throw new FirmwardError('unauthorized',
    `No owner token found: pass --token, set FIRMWARD_OWNER_TOKEN, or run this where the hub keeps its data (looked for ${file}).`);
}
