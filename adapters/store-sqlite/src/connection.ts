/**
 * One node:sqlite connection with its prepared-statement cache and its durability settings.
 */
import { DatabaseSync } from 'node:sqlite';
import type { SQLInputValue, StatementSync } from 'node:sqlite';
import type { Row } from '@firmward/sql-common';
import { ownerOnlyDatabase } from './owner-only.ts';

export interface ConnectionOptions {
  path: string;
  busyTimeoutMs: number;
}

export class Connection {
  readonly db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  #savepoints = 0;

  constructor(db: DatabaseSync) {
    this.db = db;
  }

  static open(options: ConnectionOptions): Connection {
    ownerOnlyDatabase(options.path);
    const db = new DatabaseSync(options.path, { timeout: options.busyTimeoutMs, enableForeignKeyConstraints: true });
    try {
      // WAL lets readers in other processes (CLI, a second hub) run while the hub writes.
      db.exec('PRAGMA journal_mode = WAL');
      // Invariant 8: a write resolves only once durable. FULL syncs the WAL on every commit, so a
      // committed transaction survives a power cut, not only a killed process.
      db.exec('PRAGMA synchronous = FULL');
      db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs))}`);
      db.exec('PRAGMA foreign_keys = ON');
    } catch (e) {
      db.close();
      throw e;
    }
    return new Connection(db);
  }

  /** Prepared once per SQL text, reused after. */
  statement(sql: string): StatementSync {
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.statement(sql).all(...params);
  }

  get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.statement(sql).get(...params);
  }

  run(sql: string, ...params: SQLInputValue[]): { changes: number; lastInsertRowid: number } {
    const r = this.statement(sql).run(...params);
    return { changes: Number(r.changes), lastInsertRowid: Number(r.lastInsertRowid) };
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  /**
   * Runs synchronous `fn` in its own transaction. IMMEDIATE takes the write lock up front, so a
   * second process waits (busy_timeout) at BEGIN instead of failing half-way at its first write.
   */
  immediate<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.db.exec('COMMIT');
      return result;
    } catch (e) {
      this.rollbackQuietly();
      throw e;
    }
  }

  /** Runs synchronous `fn` atomically inside an already open transaction. */
  savepoint<T>(fn: () => T): T {
    const name = `fw_sp_${++this.#savepoints}`;
    this.db.exec(`SAVEPOINT ${name}`);
    try {
      const result = fn();
      this.db.exec(`RELEASE ${name}`);
      return result;
    } catch (e) {
      // Some failures (disk full, I/O) make SQLite roll back the whole transaction by itself;
      // then there is no savepoint left to return to, and the original error is what matters.
      if (this.db.isTransaction) {
        try {
          this.db.exec(`ROLLBACK TO ${name}`);
          this.db.exec(`RELEASE ${name}`);
        } catch {
          // Reported through the original error below.
        }
      }
      throw e;
    }
  }

  /** After a failure SQLite may already have rolled back by itself; a second ROLLBACK must not hide the first error. */
  rollbackQuietly(): void {
    if (!this.db.isTransaction) return;
    try {
      this.db.exec('ROLLBACK');
    } catch {
      // The original error is the one worth reporting; the transaction is gone either way.
    }
  }

  close(): void {
    this.#statements.clear();
    if (this.db.isOpen) this.db.close();
  }
}
