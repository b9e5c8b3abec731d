export { PostgresStore, MAX_LIST_LIMIT, redactUrl } from './postgres-store.ts';
export type { PostgresStoreOptions } from './postgres-store.ts';
export { MIGRATIONS, ONE_ACTIVE_PER_HOME_INDEX, ONE_OPEN_PER_DEVICE_INDEX } from './schema.ts';
export { PostgresChangeFeed } from './change-feed.ts';
export type { PostgresChangeFeedOptions } from './change-feed.ts';
