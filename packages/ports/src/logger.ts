/** One named logger per module; levels by who must act (error: a person must act; warn: someone should look; info: what happened; debug: for us). */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(name: string): Logger;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/** Lines to stderr: `12:00:01 info  engine  offered … {…}`. */
export function consoleLogger(level: LogLevel, name = 'hub', write: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const at = (lvl: Exclude<LogLevel, 'silent'>) => (message: string, fields?: Record<string, unknown>) => {
    if (RANK[lvl] < RANK[level]) return;
    const time = new Date().toISOString().slice(11, 19);
    write(`${time} ${lvl.padEnd(5)} ${name.padEnd(8)} ${message}${fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields) : ''}`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (n) => consoleLogger(level, n, write) };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLogger };
