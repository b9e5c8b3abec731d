/** clip and LogThrottle on their own, on a hand-moved clock (the MQTT broker's use is in adapters/mqtt/test/broker-abuse.test.ts). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LOGGED_CHARS, LogThrottle, clip } from '../src/log-limits.ts';
import type { Logger } from '../src/logger.ts';

interface LogLine { level: 'debug' | 'info' | 'warn' | 'error'; message: string; detail: Readonly<Record<string, unknown>> | undefined }

function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (message: string, detail?: Readonly<Record<string, unknown>>) => {
    lines.push({ level, message, detail });
  };
  const logger: Logger & { lines: LogLine[] } = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}

describe('clip', () => {
  test('keeps short text as it is and cuts long text to 128 characters with its real length', () => {
    assert.equal(clip('plug-a'), 'plug-a');
    assert.equal(clip('x'.repeat(LOGGED_CHARS)), 'x'.repeat(LOGGED_CHARS));
    assert.equal(clip('x'.repeat(8000)), `${'x'.repeat(LOGGED_CHARS)}…(8000 chars)`);
  });

  test('never cuts a surrogate pair in half', () => {
    const text = `${'x'.repeat(LOGGED_CHARS - 1)}😀tail`;
    assert.equal(clip(text), `${'x'.repeat(LOGGED_CHARS - 1)}…(${text.length} chars)`);
  });
});

describe('LogThrottle', () => {
  const login = (from: string) => ({ what: 'refused logins', from, field: 'remoteAddress' });

  test('the first lines of a key are logged, the rest summed up once the window ends', () => {
    let now = 0;
    const log = recordingLogger();
    const throttle = new LogThrottle({ log, linesPerWindow: 3, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 50; i++) throttle.warn('a', login('10.0.0.5'), 'Refused a login.', { i });
    throttle.warn('b', login('10.0.0.6'), 'Refused a login.', { i: 0 });
    assert.deepEqual(log.lines.map((l) => l.detail?.['i']), [0, 1, 2, 0], 'another key has its own lines');

    now = 60_000;
    throttle.warn('a', login('10.0.0.5'), 'Refused a login.', { i: 50 });
    assert.equal(log.lines.length, 6);
    assert.equal(log.lines[4]!.message, '47 more refused logins from 10.0.0.5 in the last minute.');
    assert.deepEqual(log.lines[4]!.detail, { remoteAddress: '10.0.0.5', suppressed: 47 });
    assert.equal(log.lines[5]!.detail?.['i'], 50, 'a new window logs again');
    throttle.close();
    assert.equal(log.lines.length, 6, 'nothing was held back since');
  });

  test('close() writes the summaries still pending', () => {
    const log = recordingLogger();
    const throttle = new LogThrottle({ log, linesPerWindow: 1, windowMs: 10_000, now: () => 0 });
    for (let i = 0; i < 5; i++) throttle.warn('a', login('::1'), 'Refused a login.', {});
    throttle.close();
    assert.deepEqual(log.lines.map((l) => l.message), ['Refused a login.', '4 more refused logins from ::1 in the last 10 s.']);
  });

  test('keys beyond maxKeys are counted together, so many sources still give a bounded log', () => {
    const log = recordingLogger();
    const throttle = new LogThrottle({ log, linesPerWindow: 2, maxKeys: 10, now: () => 0 });
    for (let i = 0; i < 10_000; i++) throttle.warn(`login ${i}`, login(`10.1.${i >> 8}.${i & 255}`), 'Refused a login.', {});
    throttle.close();
    // 10 followed keys (one line each, nothing to sum up), then "elsewhere": 2 lines and a summary.
    assert.equal(log.lines.length, 13);
    assert.equal(log.lines.at(-1)!.message, '9988 more refused logins from other sources in the last minute.');
  });

  test('a summary comes on its own when nothing else is logged', async () => {
    const log = recordingLogger();
    const throttle = new LogThrottle({ log, linesPerWindow: 1, windowMs: 30 });
    throttle.warn('a', login('10.0.0.5'), 'Refused a login.', {});
    throttle.warn('a', login('10.0.0.5'), 'Refused a login.', {});
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(log.lines.map((l) => l.message), ['Refused a login.', '1 more refused logins from 10.0.0.5 in the last 30 ms.']);
    throttle.close();
  });
});
