/**
 * What the Home Assistant publisher needs from the hub: a subset of HubService
 * (apps/hub/src/service.ts), field for field, so the hub's DefaultHubService satisfies it as it
 * is (test-services/zigbee2mqtt-homeassistant.test.ts checks that with the compiler). Declared
 * here because adapters do not import apps.
 */

export interface HomeAssistantHome {
  id: string;
  name: string;
}

/** The parts of HubService's DeviceView the publisher shows. */
export interface HomeAssistantDevice {
  id: string;
  homeId: string;
  name: string;
  vendor: string;
  model: string;
  hardwareRevision: string;
  firmwareVersion: string;
  /** The newest release that applies to it, if any. */
  availableVersion: string | null;
  online: boolean;
  update: {
    /** One word: up-to-date, available, queued, waiting, updating, failed, unknown. */
    status: string;
    /** The hub's sentence on what happens next and why. */
    summary: string;
    jobState: string | null;
    targetVersion: string | null;
    progressPercent: number | null;
    /** Vulnerabilities the installed version has that a release fixes. */
    vulnerabilities: readonly { id: string; severity: string }[];
    /** The maker's recovery steps, when the last update failed. */
    recovery: { steps: string[]; supportUrl?: string } | null;
  };
}

export interface HomeAssistantJob {
  id: string;
  state: string;
  targetVersion: string;
}

/** A line of the hub's history: which home and device changed. */
export interface HomeAssistantHistoryEvent {
  homeId: string;
  deviceId: string | null;
}

export interface HomeAssistantHub {
  listHomes(): Promise<HomeAssistantHome[]>;
  listDevices(query: { homeId?: string }): Promise<HomeAssistantDevice[]>;
  /**
   * "Update now": enters the hub's queue through every safety gate; throws a FirmwardError with a
   * sentence when the hub refuses (already up to date, no release for it, …).
   */
  updateNow(deviceId: string, actor: string): Promise<HomeAssistantJob>;
  /** Every history line as it happens; returns an unsubscribe function. */
  subscribe(listener: (event: HomeAssistantHistoryEvent) => void): () => void;
}
