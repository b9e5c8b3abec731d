/**
 * The local PostgreSQL for the service tests (.ci/run installs and starts it on a fresh machine).
 * Every test gets its own schema or database, made here and dropped after, so runs and parallel
 * suites never see each other's rows.
 *
 * FIRMWARD_TEST_POSTGRES_URL names the server and an existing database to start from; by default
 * the Debian package's local one with trust authentication.
 */
import { randomBytes } from 'node:crypto';
import { Client, escapeIdentifier } from 'pg';

export const POSTGRES_URL = process.env.FIRMWARD_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

async function admin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Fresh schema names in the test database, all dropped by `dropAll`. */
export class TestSchemas {
  readonly #made: string[] = [];

  /** A name not used yet; the store's migrate() creates the schema. */
  next(): string {
    const name = uniqueName('fw_test');
    this.#made.push(name);
    return name;
  }

  async dropAll(): Promise<void> {
    const names = this.#made.splice(0);
    if (names.length === 0) return;
    await admin(async (c) => {
      for (const name of names) await c.query(`DROP SCHEMA IF EXISTS ${escapeIdentifier(name)} CASCADE`);
    });
  }
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database on the test server (for hubs configured by URL only). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = uniqueName('fw_test_db');
  await admin((c) => c.query(`CREATE DATABASE ${escapeIdentifier(name)}`));
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => admin(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
    }),
  };
}
