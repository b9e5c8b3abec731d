export { createSimulatedDevice, buildReleaseImage, validateProfile, SimulatedDevice } from './simulated-device.ts';
export type { SimulatedDeviceDeps } from './simulated-device.ts';
export { SimulatedPlatform } from './simulated-platform.ts';
export type { SimulatedPlatformOptions } from './simulated-platform.ts';
export { SimulatedEnvironment, inDailyWindow } from './environment.ts';
export { SeededRandom } from './random.ts';
export { demoProfiles } from './profile.ts';
export type { BatteryProfile, DailyWindow, DeviceProfile, FailureMode, SignalProfile } from './profile.ts';
