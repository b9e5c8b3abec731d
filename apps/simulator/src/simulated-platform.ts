/**
 * The agent's platform for a simulated device: the in-memory slots and bootloader of
 * `MemoryHardware` (the same fake the agent's own tests use, so there is one bootloader model),
 * with conditions, health and install time driven by the device's profile and the injected clock.
 */
import type { Slot } from '@firmward/core';
import { MemoryPlatform, sleepOn } from '@firmward/agent';
import type { DeviceConditionsReport, HealthReport, MemoryHardware } from '@firmward/agent';
import type { Clock } from '@firmward/ports';
import type { SimulatedEnvironment } from './environment.ts';
import type { DeviceProfile } from './profile.ts';

export interface SimulatedPlatformOptions {
  profile: DeviceProfile;
  environment: SimulatedEnvironment;
  clock: Clock;
  /** Called when a 'goes-silent' device hangs in its install; returns whether it hangs this time. */
  hang: () => boolean;
}

export class SimulatedPlatform extends MemoryPlatform {
  readonly #options: SimulatedPlatformOptions;

  /** Opens a new session on `hardware` (the previous one stops working). */
  constructor(hardware: MemoryHardware, options: SimulatedPlatformOptions) {
    super(hardware, hardware.newSession());
    this.#options = options;
  }

  override conditions(): Promise<DeviceConditionsReport> {
    return this.op(() => this.#options.environment.conditions(this.#options.clock.now()));
  }

  /** 'boot-fails': anything but the factory version fails its health check. */
  override healthCheck(): Promise<HealthReport> {
    return this.op(() => {
      const { profile } = this.#options;
      const running = this.hardware.running.version;
      if (profile.failure === 'boot-fails' && running !== profile.firmwareVersion) {
        return { healthy: false, detail: `Version ${running ?? 'unknown'} cannot reach its ${profile.identity.model} hardware driver.` };
      }
      return { healthy: true, detail: 'All good.' };
    });
  }

  /**
   * The install step takes `installSeconds` of simulated time, then switches atomically; a power
   * cut during it leaves the old switch in place. A 'goes-silent' device hangs here instead.
   */
  override setTrialBoot(slot: Slot): Promise<void> {
    return this.op(async () => {
      const signal = this.signal;
      if (this.#options.hang()) {
        await new Promise<never>((_resolve, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
        });
      }
      await sleepOn(this.#options.clock, this.#options.profile.installSeconds * 1000, signal);
      this.hardware.assertAlive(this.session);
      this.hardware.setTrialBoot(slot);
    });
  }
}
