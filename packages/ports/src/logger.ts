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

export interface ConsoleLoggerOptions {
  write?: (line: string) => void;
  /** The time printed on each line (the demo prints its simulated clock). */
  now?: () => number;
  /** Print times in this IANA zone instead of UTC. */
  timeZone?: string;
}

/** Lines to stderr: `01:12:07 info  engine   offered … {…}`. */
export function consoleLogger(level: LogLevel, name = 'hub', options: ConsoleLoggerOptions = {}): Logger {
  const write = options.write ?? ((l: string) => void process.stderr.write(l + '\n'));
  const clockText = options.timeZone
    ? new Intl.DateTimeFormat('en-GB', { timeZone: options.timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
    : null;
  const at = (lvl: Exclude<LogLevel, 'silent'>) => (message: string, fields?: Record<string, unknown>) => {
    if (RANK[lvl] < RANK[level]) return;
    const t = options.now?.() ?? Date.now();
    const time = clockText ? clockText.format(t) : new Date(t).toISOString().slice(11, 19);
    write(`${time} ${lvl.padEnd(5)} ${name.padEnd(8)} ${message}${fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields) : ''}`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (n) => consoleLogger(level, n, options) };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLogger };
