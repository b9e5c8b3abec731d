/**
 * Every JSON example in the README and in docs/ is read the way the software reads it: hub
 * settings by the hub's config loader, agent settings by the agent's, wire messages by the
 * protocol's schemas. An example a person copies must work (the issue found docs/agent.md's
 * example lacking its required `trust` section).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseDaemonConfig } from '@firmward/agent';
import {
  availabilitySchema, commandSchema, deviceEventSchema, deviceStateSchema, enrollmentClaimSchema, parsePayload,
} from '@firmward/protocol';
import { releaseCustomSchema } from '@firmward/tuf';
import { loadConfig } from '../src/config.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const FILES = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f))];

/** Secrets an example leaves to the environment, as the docs say to, when it needs them. */
function secretsFor(value: Record<string, unknown>): Record<string, string> {
  const section = (key: string) => (typeof value[key] === 'object' && value[key] !== null ? value[key] as Record<string, unknown> : {});
  return {
    ...(typeof section('mqtt').url === 'string' && section('mqtt').password === undefined && { FIRMWARD_MQTT_PASSWORD: 'example-broker-password' }),
    ...(section('store').kind === 'postgres' && section('store').url === undefined && { FIRMWARD_STORE_URL: 'postgres://firmward:example@db.example:5432/firmward' }),
    ...(section('images').kind === 's3' && { FIRMWARD_IMAGES_SECRET: 'example-secret' }),
  };
}

function examples(): { file: string; line: number; text: string }[] {
  const found: { file: string; line: number; text: string }[] = [];
  for (const file of FILES) {
    const content = readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of content.matchAll(/```json\n([\s\S]*?)```/g)) {
      found.push({ file, line: content.slice(0, m.index).split('\n').length, text: m[1]! });
    }
  }
  return found;
}

function check(text: string, where: string): string {
  const value = JSON.parse(text) as Record<string, unknown>;
  if ('device' in value && 'slots' in value) {
    parseDaemonConfig(text, where);
    return 'agent settings';
  }
  if ('code' in value && 'device' in value) return ok(enrollmentClaimSchema.safeParse(value), 'enrollment claim', where);
  if ('v' in value) {
    const parsed = 'type' in value
      ? ['offer', 'install', 'cancel'].includes(String(value.type)) ? parsePayload(commandSchema, text) : parsePayload(deviceEventSchema, text)
      : 'online' in value ? parsePayload(availabilitySchema, text) : parsePayload(deviceStateSchema, text);
    assert.ok(parsed.ok, `${where}: ${parsed.ok ? '' : parsed.error}`);
    return 'wire message';
  }
  if ('vendor' in value && 'version' in value && 'hardwareRevisions' in value) return ok(releaseCustomSchema.safeParse(value), 'release description', where);
  loadConfig({ argv: ['--config', where], env: secretsFor(value), readFile: () => text });
  return 'hub settings';
}

function ok(result: { success: boolean; error?: unknown }, kind: string, where: string): string {
  assert.ok(result.success, `${where}: ${String(result.error)}`);
  return kind;
}

test('every JSON example in the README and docs/ is accepted by what reads it', () => {
  const all = examples();
  assert.ok(all.length >= 10, 'the examples were found');
  const kinds = new Set<string>();
  for (const { file, line, text } of all) {
    const where = `${file}:${line}`;
    try {
      kinds.add(check(text, where));
    } catch (error) {
      assert.fail(`${where} is not accepted: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  for (const kind of ['agent settings', 'hub settings', 'wire message']) assert.ok(kinds.has(kind), `examples of ${kind} were checked`);
});

test('control: a broken example is caught', () => {
  assert.throws(() => check('{"device": {"id": "x"}, "slots": {}}', 'broken agent example'));
  assert.throws(() => check('{"repositories": [{"name": "acme"}]}', 'broken hub example'));
});
