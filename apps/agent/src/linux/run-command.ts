/**
 * Runs a configured command (argv, no shell) with a timeout: the bootloader backends, the health
 * check and the condition sources all go through here, so a hung helper can never hang the agent.
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  /** null when the command was killed (timeout) or could not start. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the command could not be started at all (missing file, no permission). */
  startError: string | null;
}

const MAX_OUTPUT_CHARS = 64 * 1024;

/**
 * @example
 * const r = await runCommand(['/usr/bin/fw_printenv', 'FW_TRIAL'], { timeoutMs: 5_000 });
 */
export function runCommand(argv: readonly string[], options: { timeoutMs: number; stdin?: string }): Promise<CommandResult> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    if (file === undefined) {
      resolve({ exitCode: null, stdout: '', stderr: '', timedOut: false, startError: 'empty command' });
      return;
    }
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const child = spawn(file, args, { stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const finish = (result: CommandResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { if (stdout.length < MAX_OUTPUT_CHARS) stdout += d; });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < MAX_OUTPUT_CHARS) stderr += d; });
    child.on('error', (error) => finish({ exitCode: null, stdout, stderr, timedOut, startError: error.message }));
    child.on('close', (code) => finish({ exitCode: timedOut ? null : code, stdout, stderr, timedOut, startError: null }));
    if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  });
}
