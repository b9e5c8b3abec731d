/** A Logger that keeps every line, for tests that look at what a bridge logged. */
import type { Logger } from '@firmward/ports';

export interface LoggedLine {
  level: string;
  message: string;
  fields: Record<string, unknown> | undefined;
}

/**
 * @example
 * const logger = recordingLogger();
 * const bridge = new Zigbee2MqttBridge({ url, clock, logger });
 * assert.ok(logger.lines.some((l) => l.level === 'error'));
 */
export function recordingLogger(): Logger & { lines: LoggedLine[] } {
  const lines: LoggedLine[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, fields });
  };
  const logger = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}
