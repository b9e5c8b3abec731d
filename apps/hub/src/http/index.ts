export { createHttpApp, OWNER_ACTOR } from './app.ts';
export type { HttpAppOptions } from './app.ts';
export { serveHttp } from './serve.ts';
export type { RunningHttpServer } from './serve.ts';
export { STATUS_OF_CODE, errorResponse } from './errors.ts';
export type { ErrorBody } from './errors.ts';
