export { SqliteStore, MAX_LIST_LIMIT } from './sqlite-store.ts';
export type { SqliteDiagnostics, SqliteStoreOptions } from './sqlite-store.ts';
export { MIGRATIONS, ONE_ACTIVE_PER_HOME_INDEX, ONE_OPEN_PER_DEVICE_INDEX } from './schema.ts';
