export { Mutex } from './mutex.ts';
export {
  JOB_COLUMNS, corrupt, deviceFromRow, deviceNotFound, homeNotFound, intervalOf, numberOf, encodeJson, eventFromRow, homeFromRow, jobFromRow, jobToValues, num, releaseFromRow,
  releaseJobFromRow, rolloutFromRow, enrollmentFromRow, PENDING_DEVICE_COLUMNS, pendingDeviceFromRow, pendingDeviceToValues, repositoryFromRow, settingFromRow,
} from './rows.ts';
export type { Row, SqlValue } from './rows.ts';
