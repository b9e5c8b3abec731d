import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import { configHelp, loadConfig } from '../src/config.ts';
import type { ConfigProblem, HubConfig } from '../src/config.ts';
import { ensureOwnerToken } from '../src/owner-token.ts';

function load(argv: string[] = [], env: Record<string, string> = {}, files: Record<string, string> = {}): HubConfig {
  return loadConfig({
    argv, env,
    readFile: (path) => {
      const content = files[path];
      if (content === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
      return content;
    },
  });
}

function problemsOf(fn: () => unknown): { message: string; problems: ConfigProblem[] } {
  try {
    fn();
  } catch (error) {
    assert.ok(isFirmwardError(error, 'config_invalid'), String(error));
    return { message: error.message, problems: (error.detail as { problems: ConfigProblem[] }).problems };
  }
  assert.fail('expected config_invalid');
}

describe('loadConfig', () => {
  test('defaults', () => {
    const c = load();
    assert.deepEqual(c, {
      dataDir: './data',
      http: { host: '127.0.0.1', port: 8080, maxBodyBytes: 65536, publicUrl: '', allowedHosts: [] },
      mqtt: {
        host: '127.0.0.1', port: 1883, url: '', username: 'hub', password: '', publicUrl: '',
        mosquitto: { passwordFile: '', aclFile: '', pidFile: '', reloadCommand: [] },
        sharedSubscriptions: false, sharedSubscriptionGroup: 'firmward-hub',
      },
      releases: { refreshSeconds: 300 },
      store: { kind: 'sqlite', path: join('./data', 'firmward.db'), url: '' },
      repositories: [],
      demo: false,
      demoSpeed: 240,
      ownerToken: null,
      engine: { tickMs: 1000, silenceTimeoutSeconds: 900, offerResendSeconds: 30, unreachableRetrySeconds: 60 },
      ddi: { enabled: false, tenant: 'DEFAULT', autoRegister: false, homeId: '', pollingSleep: '00:05:00', gatewayToken: null },
      images: { kind: 'fs', endpoint: '', region: 'us-east-1', bucket: '', prefix: '', accessKeyId: '', secretAccessKey: '', forcePathStyle: true, urlExpirySeconds: 900 },
      bridges: {
        zigbee2mqtt: { enabled: false, url: '', username: '', password: '', homeId: '', baseTopic: 'zigbee2mqtt' },
        tasmota: { enabled: false, url: '', username: '', password: '', homeId: '' },
        shelly: { enabled: false, url: '', username: '', password: '', homeId: '', devices: [], stableChannel: true },
        homeAssistant: { enabled: false, url: '', username: '', password: '', discoveryPrefix: 'homeassistant' },
      },
      logLevel: 'info',
      configFile: null,
    });
  });

  test('signed repositories and bridges come from the file; each problem is named, and a bridge password may come from the environment', () => {
    const file = JSON.stringify({
      repositories: [{ name: 'acme', url: 'https://updates.acme.example/', root: '/etc/firmward/acme-root.json' }],
      bridges: { tasmota: { enabled: true, url: 'mqtt://192.168.1.2:1883', username: 'firmward', homeId: 'flat' } },
    });
    const c = load(['--config', 'hub.json'], { FIRMWARD_TASMOTA_PASSWORD: 'tasmota-secret-1' }, { 'hub.json': file });
    assert.deepEqual(c.repositories, [{ name: 'acme', url: 'https://updates.acme.example/', root: '/etc/firmward/acme-root.json' }]);
    assert.deepEqual(c.bridges.tasmota, { enabled: true, url: 'mqtt://192.168.1.2:1883', username: 'firmward', password: 'tasmota-secret-1', homeId: 'flat' });
    assert.equal(c.bridges.shelly.enabled, false, 'every other bridge stays off');

    const bad = problemsOf(() => load(['--config', 'hub.json'], {}, { 'hub.json': JSON.stringify({
      repositories: [{ name: 'acme', url: 'ftp://x', root: '/r.json' }, { name: 'acme', url: 'https://y/', root: '/r.json' }],
      bridges: { shelly: { enabled: true }, zigbee2mqtt: { enabled: true, url: 'http://z2m', homeId: 'h' } },
    }) }));
    const keys = bad.problems.map((p) => p.key);
    for (const key of ['repositories.0.url', 'repositories', 'bridges.shelly', 'bridges.zigbee2mqtt.url']) assert.ok(keys.includes(key), `${key} in ${keys.join(', ')}`);
  });

  test('precedence: defaults < file < environment < flags, key by key', () => {
    const file = JSON.stringify({
      dataDir: '/srv/firmward', http: { port: 9000, host: '0.0.0.0' }, mqtt: { port: 1884 }, logLevel: 'debug', demoSpeed: 10,
    });
    const files = { '/etc/firmward.json': file };

    const fromFile = load(['--config', '/etc/firmward.json'], {}, files);
    assert.equal(fromFile.http.port, 9000);
    assert.equal(fromFile.http.host, '0.0.0.0');
    assert.equal(fromFile.http.maxBodyBytes, 65536, 'a key the file leaves out keeps its default');
    assert.equal(fromFile.mqtt.port, 1884);
    assert.equal(fromFile.logLevel, 'debug');
    assert.equal(fromFile.store.path, join('/srv/firmward', 'firmward.db'), 'derived paths follow dataDir');
    assert.equal(fromFile.configFile, '/etc/firmward.json');

    const fromEnv = load([], { FIRMWARD_CONFIG: '/etc/firmward.json', FIRMWARD_PORT: '9100', FIRMWARD_LOG_LEVEL: 'warn', FIRMWARD_DEMO: 'true' }, files);
    assert.equal(fromEnv.http.port, 9100, 'environment beats file');
    assert.equal(fromEnv.logLevel, 'warn');
    assert.equal(fromEnv.http.host, '0.0.0.0', 'file still beats default where env is silent');
    assert.equal(fromEnv.mqtt.port, 1884);
    assert.equal(fromEnv.demo, true);

    const fromFlags = load(['--port', '9200', '--log-level=error', '--no-demo', '--mqtt-port', '2883', '--store-path', '/var/db.sqlite'],
      { FIRMWARD_CONFIG: '/etc/firmward.json', FIRMWARD_PORT: '9100', FIRMWARD_LOG_LEVEL: 'warn', FIRMWARD_DEMO: 'true', FIRMWARD_MQTT_PORT: '1999' }, files);
    assert.equal(fromFlags.http.port, 9200, 'flags beat environment');
    assert.equal(fromFlags.logLevel, 'error');
    assert.equal(fromFlags.demo, false, '--no-demo turns off what the environment turned on');
    assert.equal(fromFlags.mqtt.port, 2883);
    assert.equal(fromFlags.store.path, '/var/db.sqlite');
    assert.equal(fromFlags.demoSpeed, 10, 'file value survives where env and flags are silent');
  });

  test('--config beats FIRMWARD_CONFIG', () => {
    const c = load(['--config', 'b.json'], { FIRMWARD_CONFIG: 'a.json' }, { 'a.json': '{"http":{"port":1}}', 'b.json': '{"http":{"port":2}}' });
    assert.equal(c.http.port, 2);
  });

  test('owner token comes from the environment and never from a flag', () => {
    assert.equal(load([], { FIRMWARD_OWNER_TOKEN: 'abcdefghijklmnop-0123' }).ownerToken, 'abcdefghijklmnop-0123');
    const { problems } = problemsOf(() => load(['--owner-token', 'abcdefghijklmnop-0123']));
    assert.deepEqual(problems.map((p) => p.key), ['--owner-token']);
    assert.ok(!JSON.stringify(problems).includes('abcdefghijklmnop'), 'a secret on the command line is not echoed back');
    const short = problemsOf(() => load([], { FIRMWARD_OWNER_TOKEN: 'short' }));
    assert.equal(short.problems[0]!.key, 'ownerToken');
    assert.match(short.problems[0]!.message, /16 characters/);
  });

  test('every problem is reported at once, each with its key and source', () => {
    const { message, problems } = problemsOf(() => load(
      ['--port', 'eighty', '--bogus', '--tick-ms=5'],
      { FIRMWARD_CONFIG: 'hub.json', FIRMWARD_MQTT_PORT: '70000', FIRMWARD_DEMO: 'perhaps' },
      { 'hub.json': JSON.stringify({ logLevel: 'loud', colour: 'blue', http: { maxBodyBytes: -1, extra: true }, mqtt: { url: 'http://x' } }) },
    ));
    const byKey = new Map(problems.map((p) => [p.key, p]));
    assert.deepEqual([...byKey.keys()].sort(), [
      '--bogus', 'colour', 'demo', 'engine.tickMs', 'http.extra', 'http.maxBodyBytes', 'http.port', 'logLevel', 'mqtt.port', 'mqtt.url',
    ]);
    assert.equal(byKey.get('http.port')!.source, '--port "eighty"');
    assert.equal(byKey.get('mqtt.port')!.source, 'FIRMWARD_MQTT_PORT="70000"');
    assert.equal(byKey.get('logLevel')!.source, 'file hub.json');
    assert.match(byKey.get('logLevel')!.message, /debug, info, warn, error, silent/);
    assert.match(byKey.get('colour')!.message, /not a setting/);
    assert.match(byKey.get('demo')!.message, /true or false/);
    for (const p of problems) assert.ok(message.includes(p.key), `the sentence names ${p.key}`);
    assert.match(message, /^The hub's settings have 10 problems/);
  });

  test('bad ports', () => {
    for (const port of ['70000', '-1', '80.5', 'abc', ' ']) {
      const { problems } = problemsOf(() => load([`--port=${port}`]));
      assert.equal(problems.length, 1, port);
      assert.equal(problems[0]!.key, 'http.port');
      assert.match(problems[0]!.message, /0 \(any free port\) to 65535/);
    }
    assert.equal(load(['--port', '0']).http.port, 0, 'port 0 means any free port');
    const fromFile = problemsOf(() => load(['--config', 'c.json'], {}, { 'c.json': '{"http":{"port":"8080"}}' }));
    assert.equal(fromFile.problems[0]!.key, 'http.port', 'the file must use numbers, not text');
  });

  test('bad log level', () => {
    const { problems } = problemsOf(() => load([], { FIRMWARD_LOG_LEVEL: 'verbose' }));
    assert.deepEqual(problems.map((p) => [p.key, p.source]), [['logLevel', 'FIRMWARD_LOG_LEVEL="verbose"']]);
  });

  test('unknown keys in the file are errors, at any depth', () => {
    const { problems } = problemsOf(() => load(['--config', 'c.json'], {}, { 'c.json': '{"engine":{"tickMS":5},"store":{"kind":"sqlite","file":"x"}}' }));
    assert.deepEqual(problems.map((p) => p.key).sort(), ['engine.tickMS', 'store.file']);
  });

  test('a missing or broken file is reported together with the other problems', () => {
    const missing = problemsOf(() => load(['--config', 'nope.json', '--port', 'x']));
    assert.deepEqual(missing.problems.map((p) => p.key).sort(), ['config file', 'http.port']);
    assert.match(missing.problems.find((p) => p.key === 'config file')!.message, /cannot be read/);
    const broken = problemsOf(() => load(['--config', 'c.json'], {}, { 'c.json': '{"http": {' }));
    assert.match(broken.problems[0]!.message, /not valid JSON/);
    const notObject = problemsOf(() => load(['--config', 'c.json'], {}, { 'c.json': '[1,2]' }));
    assert.match(notObject.problems[0]!.message, /one JSON object/);
  });

  test('command-line mistakes: positional, value on a switch, --no- on a value, missing value', () => {
    const { problems } = problemsOf(() => load(['serve', '--demo=yes', '--no-port', '--log-level']));
    assert.deepEqual(problems.map((p) => p.key), ['serve', '--demo', '--no-port', '--log-level']);
    const swallowed = problemsOf(() => load(['--data-dir', '--demo']));
    assert.deepEqual(swallowed.problems.map((p) => p.key), ['--data-dir'], 'an option is not taken as the previous option\'s value');
    assert.equal(load(['--data-dir=-odd-name']).dataDir, '-odd-name', 'the = form allows a value starting with -');
  });

  test('an empty environment variable counts as unset', () => {
    assert.equal(load([], { FIRMWARD_PORT: '' }).http.port, 8080);
  });

  test('the host names the hub answers to (http.allowedHosts): a list in the file, comma-separated in FIRMWARD_ALLOWED_HOSTS and --allowed-hosts', () => {
    const files = { 'hub.json': JSON.stringify({ http: { allowedHosts: ['hub.lan', 'firmward.example'] } }) };
    assert.deepEqual(load(['--config', 'hub.json'], {}, files).http.allowedHosts, ['hub.lan', 'firmward.example']);
    assert.deepEqual(load(['--config', 'hub.json'], { FIRMWARD_ALLOWED_HOSTS: ' hub.home , nas.local,' }, files).http.allowedHosts, ['hub.home', 'nas.local'], 'environment beats file');
    assert.deepEqual(load(['--allowed-hosts', 'a.example,b.example'], { FIRMWARD_ALLOWED_HOSTS: 'hub.home' }).http.allowedHosts, ['a.example', 'b.example'], 'flag beats environment');
    assert.deepEqual(load([], { FIRMWARD_ALLOWED_HOSTS: '*' }).http.allowedHosts, ['*']);
    const { problems } = problemsOf(() => load(['--allowed-hosts', 'hub.lan,http://hub.example,hub.lan:8080']));
    assert.deepEqual(problems.map((p) => [p.key, p.source]), [
      ['http.allowedHosts.1', '--allowed-hosts "hub.lan,http://hub.example,hub.lan:8080"'],
      ['http.allowedHosts.2', '--allowed-hosts "hub.lan,http://hub.example,hub.lan:8080"'],
    ]);
    assert.match(problems[0]!.message, /no scheme, no port/);
    assert.match(problemsOf(() => load(['--config', 'x.json'], {}, { 'x.json': '{"http":{"allowedHosts":"hub.lan"}}' })).problems[0]!.message, /must be a list of host names/);
  });

  test('--help lists every setting with its flag and variable, the host names too', () => {
    assert.match(configHelp(), /--allowed-hosts <a,b,…>\s+http\.allowedHosts \(FIRMWARD_ALLOWED_HOSTS\)/);
  });

  test('an external broker address must look like one', () => {
    assert.equal(load([], { FIRMWARD_MQTT_URL: 'mqtts://broker.example:8883', FIRMWARD_MQTT_PASSWORD: 'pw' }).mqtt.url, 'mqtts://broker.example:8883');
    assert.equal(problemsOf(() => load([], { FIRMWARD_MQTT_URL: 'broker.example' })).problems[0]!.key, 'mqtt.url');
  });

  test('the hub\'s login on an external broker: user name from file, environment or flag; password never from a flag', () => {
    const c = load(['--mqtt-url', 'mqtt://broker.example:1883', '--mqtt-username', 'hub-1'], { FIRMWARD_MQTT_PASSWORD: 'broker-secret-42' });
    assert.deepEqual(c.mqtt, {
      host: '127.0.0.1', port: 1883, url: 'mqtt://broker.example:1883', username: 'hub-1', password: 'broker-secret-42', publicUrl: '',
      mosquitto: { passwordFile: '', aclFile: '', pidFile: '', reloadCommand: [] },
      // One hub on SQLite: no other instance to share with.
      sharedSubscriptions: false, sharedSubscriptionGroup: 'firmward-hub',
    });
    assert.equal(load([], { FIRMWARD_MQTT_USERNAME: 'hub-2' }).mqtt.username, 'hub-2');
    const fromFile = load(['--config', 'c.json'], {}, { 'c.json': '{"mqtt":{"url":"mqtt://b:1883","username":"hub-3","password":"from-file"}}' });
    assert.deepEqual([fromFile.mqtt.username, fromFile.mqtt.password], ['hub-3', 'from-file']);

    const flag = problemsOf(() => load(['--mqtt-password', 'broker-secret-42']));
    assert.deepEqual(flag.problems.map((p) => p.key), ['--mqtt-password']);
    assert.ok(!flag.message.includes('broker-secret-42'), 'a secret on the command line is not echoed back');
  });

  test('shared subscriptions: on by default exactly when several instances are possible (an external broker and PostgreSQL)', () => {
    const external = { FIRMWARD_MQTT_URL: 'mqtt://broker.example:1883', FIRMWARD_MQTT_PASSWORD: 'pw' };
    const postgres = { FIRMWARD_STORE_KIND: 'postgres', FIRMWARD_STORE_URL: 'postgres://db.example/firmward' };
    const shared = (argv: string[], env: Record<string, string>) => {
      const { sharedSubscriptions, sharedSubscriptionGroup } = load(argv, env).mqtt;
      return [sharedSubscriptions, sharedSubscriptionGroup];
    };
    assert.deepEqual(shared([], { ...external, ...postgres }), [true, 'firmward-hub']);
    assert.deepEqual(shared([], external), [false, 'firmward-hub'], 'an external broker with SQLite: one hub');
    assert.deepEqual(shared([], postgres), [false, 'firmward-hub'], 'the embedded broker: one hub per broker');
    // Chosen explicitly, in the file, the environment or a flag; the group too.
    assert.deepEqual(shared(['--no-mqtt-shared-subscriptions'], { ...external, ...postgres }), [false, 'firmward-hub']);
    assert.deepEqual(shared([], { ...external, ...postgres, FIRMWARD_MQTT_SHARED_SUBSCRIPTIONS: 'off' }), [false, 'firmward-hub']);
    assert.deepEqual(shared(['--mqtt-shared-subscriptions', '--mqtt-shared-group', 'site-2'], external), [true, 'site-2']);
    const fromFile = load(['--config', 'c.json'], { FIRMWARD_MQTT_PASSWORD: 'pw' }, { 'c.json': '{"mqtt":{"url":"mqtt://b:1883","sharedSubscriptions":true,"sharedSubscriptionGroup":"eu"}}' });
    assert.deepEqual([fromFile.mqtt.sharedSubscriptions, fromFile.mqtt.sharedSubscriptionGroup], [true, 'eu']);
    assert.match(configHelp(), /--mqtt-shared-subscriptions\s+mqtt\.sharedSubscriptions \(FIRMWARD_MQTT_SHARED_SUBSCRIPTIONS\)/);
    assert.match(configHelp(), /--mqtt-shared-group <value>\s+mqtt\.sharedSubscriptionGroup \(FIRMWARD_MQTT_SHARED_GROUP\)/);
  });

  test('shared subscriptions are refused with the embedded broker, and a group name a broker cannot take is refused', () => {
    const embedded = problemsOf(() => load(['--mqtt-shared-subscriptions']));
    assert.deepEqual(embedded.problems.map((p) => [p.key, p.source]), [['mqtt.sharedSubscriptions', '--mqtt-shared-subscriptions true']]);
    assert.match(embedded.problems[0]!.message, /needs an external broker \(mqtt\.url\)/);
    const group = problemsOf(() => load([], { FIRMWARD_MQTT_SHARED_GROUP: 'a/b' }));
    assert.deepEqual(group.problems.map((p) => [p.key, p.source]), [['mqtt.sharedSubscriptionGroup', 'FIRMWARD_MQTT_SHARED_GROUP="a/b"']]);
    assert.match(group.problems[0]!.message, /letters, digits/);
  });

  test('an external broker needs the hub\'s password; the embedded one does not', () => {
    const { problems } = problemsOf(() => load([], { FIRMWARD_MQTT_URL: 'mqtt://broker.example:1883' }));
    assert.deepEqual(problems.map((p) => [p.key, p.source]), [['mqtt.password', 'FIRMWARD_MQTT_URL="mqtt://broker.example:1883"']]);
    assert.match(problems[0]!.message, /FIRMWARD_MQTT_PASSWORD/);
    assert.equal(load([]).mqtt.password, '', 'the embedded broker makes up the hub\'s login itself');
  });

  test('PostgreSQL store: kind and URL from file or environment, the URL never from a flag', () => {
    const url = 'postgres://firmward:db-secret-77@db.example:5432/firmward';
    const c = load([], { FIRMWARD_STORE_KIND: 'postgres', FIRMWARD_STORE_URL: url });
    assert.deepEqual([c.store.kind, c.store.url], ['postgres', url]);
    const fromFile = load(['--config', 'c.json'], {}, { 'c.json': JSON.stringify({ store: { kind: 'postgres', url: 'postgresql://db/firmward' } }) });
    assert.deepEqual([fromFile.store.kind, fromFile.store.url], ['postgres', 'postgresql://db/firmward']);
    assert.equal(load(['--store-kind', 'postgres'], { FIRMWARD_STORE_URL: url }).store.kind, 'postgres');

    const flag = problemsOf(() => load(['--store-url', url]));
    assert.deepEqual(flag.problems.map((p) => p.key), ['--store-url']);
    assert.ok(!flag.message.includes('db-secret-77'), 'a database password on the command line is not echoed back');
  });

  test('PostgreSQL store: the kind needs a URL, a URL needs the kind, and a bad URL is not echoed', () => {
    const noUrl = problemsOf(() => load(['--store-kind', 'postgres']));
    assert.deepEqual(noUrl.problems.map((p) => [p.key, p.source]), [['store.url', '--store-kind "postgres"']]);
    assert.match(noUrl.message, /FIRMWARD_STORE_URL/);

    const noKind = problemsOf(() => load([], { FIRMWARD_STORE_URL: 'postgres://hub:db-secret-77@db/firmward' }));
    assert.deepEqual(noKind.problems.map((p) => p.key), ['store.kind']);
    assert.ok(!noKind.message.includes('db-secret-77'));

    const badUrl = problemsOf(() => load([], { FIRMWARD_STORE_KIND: 'postgres', FIRMWARD_STORE_URL: 'mysql://hub:db-secret-77@db/firmward' }));
    assert.deepEqual(badUrl.problems.map((p) => [p.key, p.source]), [['store.url', 'FIRMWARD_STORE_URL (value not shown)']]);
    assert.ok(!badUrl.message.includes('db-secret-77'), 'the password in a rejected URL is not echoed back');
    assert.ok(!JSON.stringify(badUrl.problems).includes('db-secret-77'));

    assert.deepEqual(problemsOf(() => load([], { FIRMWARD_STORE_KIND: 'mysql' })).problems.map((p) => p.key), ['store.kind']);
    assert.equal(load([]).store.kind, 'sqlite', 'SQLite stays the default');
  });

  test('a secret from the environment is never repeated in a problem report', () => {
    const { message, problems } = problemsOf(() => load([], { FIRMWARD_OWNER_TOKEN: 'tiny7', FIRMWARD_MQTT_USERNAME: '', FIRMWARD_PORT: 'x' }));
    assert.deepEqual(problems.map((p) => p.key).sort(), ['http.port', 'ownerToken']);
    assert.equal(problems.find((p) => p.key === 'ownerToken')!.source, 'FIRMWARD_OWNER_TOKEN (value not shown)');
    assert.ok(!message.includes('tiny7'));
  });
});

describe('ensureOwnerToken', () => {
  test('creates a token once, with mode 0600, then reuses it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'firmward-token-'));
    try {
      const dataDir = join(dir, 'data');
      const first = ensureOwnerToken(dataDir, null);
      assert.equal(first.created, true);
      assert.match(first.token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
      const file = join(dataDir, 'owner-token');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(readFileSync(file, 'utf8').trim(), first.token);
      const second = ensureOwnerToken(dataDir, undefined);
      assert.deepEqual(second, { token: first.token, created: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a token from the environment wins and is stored', () => {
    const dir = mkdtempSync(join(tmpdir(), 'firmward-token-'));
    try {
      ensureOwnerToken(dir, null);
      const fromEnv = ensureOwnerToken(dir, 'my-own-token-0123456789');
      assert.deepEqual(fromEnv, { token: 'my-own-token-0123456789', created: false });
      assert.equal(readFileSync(join(dir, 'owner-token'), 'utf8').trim(), 'my-own-token-0123456789');
      assert.deepEqual(ensureOwnerToken(dir, null), { token: 'my-own-token-0123456789', created: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an empty token file is replaced by a fresh token', () => {
    const dir = mkdtempSync(join(tmpdir(), 'firmward-token-'));
    try {
      writeFileSync(join(dir, 'owner-token'), '\n');
      const result = ensureOwnerToken(dir, null);
      assert.equal(result.created, true);
      assert.notEqual(result.token, '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
