export { Mutex } from './mutex.ts';
export {
  JOB_COLUMNS, corrupt, deviceFromRow, deviceNotFound, homeNotFound, intervalOf, numberOf, encodeJson, eventFromRow, homeFromRow, jobFromRow, jobToValues, num, releaseFromRow,
  releaseJobFromRow, rolloutFromRow,
} from './rows.ts';
export type { Row, SqlValue } from './rows.ts';
