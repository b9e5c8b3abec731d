export { HubClient } from './client.ts';
export type {
  HubClientOptions, EventStreamOptions, DeviceView, HomeView, JobView, HealthView, HomeSettingsPatch, DeviceSettingsPatch,
} from './client.ts';
export { main, resolveToken, DEFAULT_HUB } from './main.ts';
export { formatStatus, formatDevices, formatHistory, formatJob, formatHome, table } from './format.ts';
