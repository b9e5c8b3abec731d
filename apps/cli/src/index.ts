export { HubClient } from './client.ts';
export type {
  HubClientOptions, EventStreamOptions, DeviceView, HomeView, JobView, HealthView, HomeSettingsPatch, DeviceSettingsPatch,
  ApproveInput, BridgeUpdate, BridgeView, DdiSettingsPatch, DdiSettingsView, DevicePatch, EnrollmentCreated, EnrollmentView, HomeDeletion,
  IssuedCredential, NewHomeInput, NewRepositoryInput, PendingDeviceView, RegisterDeviceInput, RegisteredDevice, RepositoryView,
} from './client.ts';
export { main, resolveToken, DEFAULT_HUB } from './main.ts';
export { resolveHub, resolveOwnerToken, HUB_URL_FILE } from './hub-address.ts';
export type { HubAddress, OwnerToken } from './hub-address.ts';
export { EXIT, exitCodeOf, usageError } from './exit-codes.ts';
export type { ExitCode } from './exit-codes.ts';
export { formatStatus, formatDevices, formatHistory, formatJob, formatHome, table } from './format.ts';
export { zonedTime } from './setup-format.ts';
