/**
 * Runs `firmward …` as a person does: a child process with its own environment and working
 * folder, so argument parsing, finding the hub, the HTTP client and exit codes are all real.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Never throws on a non-zero exit (the test asserts on the code). The child sees only PATH, a
 * data folder that does not exist (none at all with `noDataDir`: it looks in ./data), and `env`:
 * nothing of the test runner's own settings.
 */
export async function runCli(args: readonly string[], o: { env?: Record<string, string>; cwd?: string; noDataDir?: boolean } = {}): Promise<CliRun> {
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', ...(o.noDataDir !== true && { FIRMWARD_DATA_DIR: '/nonexistent-firmward-data' }), ...o.env };
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args], { env, timeout: 30_000, ...(o.cwd !== undefined && { cwd: o.cwd }) });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
