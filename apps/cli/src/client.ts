/**
 * A typed client for the hub's HTTP API, shared by the CLI, its tests and the dashboard
 * (STYLE principle 13: one typed wire contract). The hub's sentence travels unchanged: a failed
 * call throws a FirmwardError with the hub's code and message.
 */
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import type { ErrorCode, JobState } from '@firmward/core';
import type { EventQuery, HistoryEvent } from '@firmward/ports';
// Types only (erased at run time): the read models are defined once, beside the HubService.
import type {
  DeviceSettingsPatch, DeviceView, HealthView, HomeSettingsPatch, HomeView, JobView, RolloutView, StartRolloutInput,
} from '../../hub/src/service.ts';
import type {
  ApproveInput, DdiSettingsPatch, DdiSettingsView, DevicePatch, EnrollmentCreated, EnrollmentView, HomeDeletion, IssuedCredential,
  NewHomeInput, NewRepositoryInput, PendingDeviceView, RegisterDeviceInput, RegisteredDevice, RepositoryView,
} from '../../hub/src/onboarding/types.ts';
import type { BridgeName, BridgePatch, BridgeView } from '../../hub/src/bridge-settings.ts';
import type { BridgeState, BridgeStatus } from '../../hub/src/bridge-runner.ts';

export type { DeviceSettingsPatch, DeviceView, HealthView, HomeSettingsPatch, HomeView, JobView, RolloutView, StartRolloutInput };
export type {
  ApproveInput, DdiSettingsPatch, DdiSettingsView, DevicePatch, EnrollmentCreated, EnrollmentView, HomeDeletion, IssuedCredential,
  NewHomeInput, NewRepositoryInput, PendingDeviceView, RegisterDeviceInput, RegisteredDevice, RepositoryView,
  BridgeName, BridgePatch, BridgeView, BridgeState, BridgeStatus,
};

/** `PATCH /api/v1/bridges/:name`: the bridge's settings, and optionally a home made for its devices in the same step. */
export type BridgeUpdate = BridgePatch & { newHome?: { name: string; timeZone?: string } };

export interface HubClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  token: string;
  /** Where `baseUrl` came from ("from --hub", "from data/hub-url", …), named when the hub cannot be reached. */
  origin?: string;
  /** Per request, except the event stream; default 30 s. */
  timeoutMs?: number;
  /** How often a hub that says it is still starting (503 not_ready) is asked again; default 3. */
  notReadyRetries?: number;
  /** The longest pause before asking a starting hub again, whatever its Retry-After says; default 10 s. */
  maxRetryWaitMs?: number;
  fetch?: typeof fetch;
}

export interface EventStreamOptions {
  homeId?: string;
  deviceId?: string;
  signal?: AbortSignal;
  /** Called once the hub has accepted the stream: events after this point are not missed. */
  onOpen?: () => void;
}

type Query = Record<string, string | number | boolean | undefined>;

function queryString(query: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s === '' ? '' : `?${s}`;
}

function isErrorBody(value: unknown): value is { error: { code: string; message: string } } {
  if (typeof value !== 'object' || value === null) return false;
  const error = (value as { error?: unknown }).error;
  return typeof error === 'object' && error !== null
    && typeof (error as { code?: unknown }).code === 'string' && typeof (error as { message?: unknown }).message === 'string';
}

/**
 * @example
 * const hub = new HubClient({ baseUrl: 'http://127.0.0.1:8080', token });
 * for (const device of await hub.listDevices()) console.log(device.name, device.update.summary);
 */
export class HubClient {
  readonly baseUrl: string;
  readonly #token: string;
  readonly #where: string;
  readonly #timeoutMs: number;
  readonly #notReadyRetries: number;
  readonly #maxRetryWaitMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: HubClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    this.#where = options.origin === undefined || options.origin === '' ? this.baseUrl : `${this.baseUrl} (${options.origin})`;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#notReadyRetries = options.notReadyRetries ?? 3;
    this.#maxRetryWaitMs = options.maxRetryWaitMs ?? 10_000;
    this.#fetch = options.fetch ?? fetch;
  }

  health(): Promise<HealthView> {
    return this.#call('GET', '/api/v1/health');
  }
  listHomes(): Promise<HomeView[]> {
    return this.#call('GET', '/api/v1/homes');
  }
  getHome(homeId: string): Promise<HomeView> {
    return this.#call('GET', `/api/v1/homes/${encodeURIComponent(homeId)}`);
  }
  updateHomeSettings(homeId: string, patch: HomeSettingsPatch): Promise<HomeView> {
    return this.#call('PATCH', `/api/v1/homes/${encodeURIComponent(homeId)}/settings`, patch);
  }
  resume(homeId: string): Promise<HomeView> {
    return this.#call('POST', `/api/v1/homes/${encodeURIComponent(homeId)}/resume`, {});
  }
  skip(homeId: string): Promise<HomeView> {
    return this.#call('POST', `/api/v1/homes/${encodeURIComponent(homeId)}/skip`, {});
  }
  listRollouts(): Promise<RolloutView[]> {
    return this.#call('GET', '/api/v1/rollouts');
  }
  startRollout(input: StartRolloutInput): Promise<RolloutView> {
    return this.#call('POST', '/api/v1/rollouts', input);
  }
  actOnRollout(rolloutId: string, action: 'pause' | 'resume' | 'abort'): Promise<RolloutView> {
    return this.#call('POST', `/api/v1/rollouts/${encodeURIComponent(rolloutId)}/${action}`, {});
  }
  listDevices(query: { homeId?: string } = {}): Promise<DeviceView[]> {
    return this.#call('GET', `/api/v1/devices${queryString(query)}`);
  }
  getDevice(deviceId: string): Promise<DeviceView> {
    return this.#call('GET', `/api/v1/devices/${encodeURIComponent(deviceId)}`);
  }
  updateDeviceSettings(deviceId: string, patch: DeviceSettingsPatch): Promise<DeviceView> {
    return this.#call('PATCH', `/api/v1/devices/${encodeURIComponent(deviceId)}/settings`, patch);
  }
  /** "Update now": still goes through every safety check. */
  updateNow(deviceId: string): Promise<JobView> {
    return this.#call('POST', `/api/v1/devices/${encodeURIComponent(deviceId)}/update`, {});
  }
  /** Starts past a failing safety check; the caller must have asked the person first (invariant 3). */
  force(deviceId: string): Promise<JobView> {
    return this.#call('POST', `/api/v1/devices/${encodeURIComponent(deviceId)}/force`, { confirm: true });
  }
  listJobs(query: { homeId?: string; deviceId?: string; open?: boolean } = {}): Promise<JobView[]> {
    return this.#call('GET', `/api/v1/jobs${queryString(query)}`);
  }
  getJob(jobId: string): Promise<JobView> {
    return this.#call('GET', `/api/v1/jobs/${encodeURIComponent(jobId)}`);
  }
  cancel(jobId: string): Promise<JobView> {
    return this.#call('POST', `/api/v1/jobs/${encodeURIComponent(jobId)}/cancel`, {});
  }
  listEvents(query: Partial<EventQuery> & { to?: JobState } = {}): Promise<HistoryEvent[]> {
    return this.#call('GET', `/api/v1/events${queryString({ ...query })}`);
  }


  // --- setting a household up (apps/hub/src/http/onboarding-routes.ts) ---

  createHome(input: NewHomeInput): Promise<HomeView> {
    return this.#call('POST', '/api/v1/homes', input);
  }
  renameHome(homeId: string, name: string): Promise<HomeView> {
    return this.#call('PATCH', `/api/v1/homes/${encodeURIComponent(homeId)}`, { name });
  }
  /** Refused while one of its devices installs; its devices lose their access at once. */
  deleteHome(homeId: string): Promise<HomeDeletion> {
    return this.#call('DELETE', `/api/v1/homes/${encodeURIComponent(homeId)}`);
  }
  /** The code in the answer is shown once: the hub keeps only its digest. */
  createEnrollment(homeId: string, input: { expiresInMinutes?: number } = {}): Promise<EnrollmentCreated> {
    return this.#call('POST', `/api/v1/homes/${encodeURIComponent(homeId)}/enrollments`, input);
  }
  listEnrollments(query: { homeId?: string } = {}): Promise<EnrollmentView[]> {
    return this.#call('GET', `/api/v1/enrollments${queryString(query)}`);
  }
  revokeEnrollment(enrollmentId: string): Promise<void> {
    return this.#callVoid('DELETE', `/api/v1/enrollments/${encodeURIComponent(enrollmentId)}`);
  }
  listPendingDevices(query: { homeId?: string; all?: boolean } = {}): Promise<PendingDeviceView[]> {
    return this.#call('GET', `/api/v1/pending-devices${queryString(query)}`);
  }
  /** `pendingId` may also be the device id the device asked for (what the agent prints). */
  approve(pendingId: string, input: ApproveInput = {}): Promise<DeviceView> {
    return this.#call('POST', `/api/v1/pending-devices/${encodeURIComponent(pendingId)}/approve`, input);
  }
  reject(pendingId: string): Promise<PendingDeviceView> {
    return this.#call('POST', `/api/v1/pending-devices/${encodeURIComponent(pendingId)}/reject`, {});
  }
  /** The credential in the answer is shown once: the hub keeps only its hash or digest. */
  registerDevice(homeId: string, input: RegisterDeviceInput): Promise<RegisteredDevice> {
    return this.#call('POST', `/api/v1/homes/${encodeURIComponent(homeId)}/devices`, input);
  }
  changeDevice(deviceId: string, patch: DevicePatch): Promise<DeviceView> {
    return this.#call('PATCH', `/api/v1/devices/${encodeURIComponent(deviceId)}`, patch);
  }
  removeDevice(deviceId: string): Promise<{ deviceId: string }> {
    return this.#call('DELETE', `/api/v1/devices/${encodeURIComponent(deviceId)}`);
  }
  /** A new secret or TargetToken, shown once; the old one stops working at once. */
  rotateCredential(deviceId: string): Promise<IssuedCredential> {
    return this.#call('POST', `/api/v1/devices/${encodeURIComponent(deviceId)}/credentials`, {});
  }
  revokeCredential(deviceId: string): Promise<DeviceView> {
    return this.#call('DELETE', `/api/v1/devices/${encodeURIComponent(deviceId)}/credentials`);
  }
  listRepositories(): Promise<RepositoryView[]> {
    return this.#call('GET', '/api/v1/repositories');
  }
  /** `root` is the maker's root.json as text: trust starts there. */
  addRepository(input: NewRepositoryInput): Promise<RepositoryView> {
    return this.#call('POST', '/api/v1/repositories', input);
  }
  removeRepository(name: string): Promise<void> {
    return this.#callVoid('DELETE', `/api/v1/repositories/${encodeURIComponent(name)}`);
  }
  refreshRepository(name: string): Promise<RepositoryView> {
    return this.#call('POST', `/api/v1/repositories/${encodeURIComponent(name)}/refresh`, {});
  }
  ddiSettings(): Promise<DdiSettingsView> {
    return this.#call('GET', '/api/v1/ddi');
  }
  changeDdiSettings(patch: DdiSettingsPatch): Promise<DdiSettingsView> {
    return this.#call('PATCH', '/api/v1/ddi', patch);
  }
  listBridges(): Promise<BridgeView[]> {
    return this.#call('GET', '/api/v1/bridges');
  }
  updateBridge(name: string, patch: BridgeUpdate): Promise<BridgeView> {
    return this.#call('PATCH', `/api/v1/bridges/${encodeURIComponent(name)}`, patch);
  }

  /**
   * The hub's live history, as it happens. Ends when `signal` aborts or the hub closes the stream.
   *
   * @example
   * for await (const event of hub.streamEvents({ deviceId, signal })) console.log(event.message);
   */
  async *streamEvents(options: EventStreamOptions = {}): AsyncGenerator<HistoryEvent> {
    const path = `/api/v1/events/stream${queryString({ homeId: options.homeId, deviceId: options.deviceId })}`;
    const response = await this.#send('GET', path, undefined, () => options.signal ?? null, 'text/event-stream');
    if (response.body === null) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (value.event === 'ready') options.onOpen?.();
        else if (value.event === 'history') yield JSON.parse(value.data) as HistoryEvent;
      }
    } catch (error) {
      if (options.signal?.aborted) return;
      throw new FirmwardError('hub_unreachable', `The connection to the hub at ${this.#where} broke off.`, { cause: error });
    } finally {
      reader.releaseLock();
    }
  }

  /** Where a device downloads a release's image from this hub. */
  firmwareUrl(releaseId: string): string {
    return `${this.baseUrl}/firmware/${releaseId.split('/').map(encodeURIComponent).join('/')}`;
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.#send(method, path, body, () => AbortSignal.timeout(this.#timeoutMs), 'application/json');
    try {
      return await response.json() as T;
    } catch (error) {
      throw new FirmwardError('internal', `The hub at ${this.baseUrl} sent an answer that is not JSON.`, { cause: error });
    }
  }

  /** For the answers without a body (204). */
  async #callVoid(method: string, path: string, body?: unknown): Promise<void> {
    const response = await this.#send(method, path, body, () => AbortSignal.timeout(this.#timeoutMs), 'application/json');
    await response.body?.cancel();
  }

  /**
   * One request; a hub that is still starting is asked again after its Retry-After. That is safe
   * for every method: the hub answers not_ready before any handler ran (http/app.ts, readiness).
   */
  async #send(method: string, path: string, body: unknown, signal: () => AbortSignal | null, accept: string): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#sendOnce(method, path, body, signal(), accept);
      } catch (error) {
        if (!isFirmwardError(error, 'not_ready')) throw error;
        if (attempt >= this.#notReadyRetries) {
          throw new FirmwardError('not_ready', `The hub at ${this.#where} is still starting after ${attempt + 1} tries; wait a little and try again, or look at its log.`, { cause: error, ...(error.detail && { detail: { ...error.detail } }) });
        }
        const retryAfter = error.detail?.['retryAfterSeconds'];
        const waitMs = Math.min(this.#maxRetryWaitMs, typeof retryAfter === 'number' ? retryAfter * 1000 : 1000);
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }

  async #sendOnce(method: string, path: string, body: unknown, signal: AbortSignal | null, accept: string): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}`, accept };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await this.#fetch(`${this.baseUrl}${path}`, {
        method, headers, signal, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      if (error instanceof DOMException && error.name === 'TimeoutError') {
        throw new FirmwardError('hub_unreachable', `The hub at ${this.#where} did not answer in time.`, { cause: error });
      }
      throw new FirmwardError('hub_unreachable', `Cannot reach the hub at ${this.#where}; is it running?`, { cause: error });
    }
    if (response.ok) return response;
    let parsed: unknown = null;
    try {
      parsed = await response.json();
    } catch {
      // fall through: the status alone has to do
    }
    if (isErrorBody(parsed)) {
      const retryAfter = Number(response.headers.get('retry-after') ?? '');
      const detail: Record<string, unknown> = { status: response.status, ...(Number.isFinite(retryAfter) && retryAfter >= 0 && response.headers.has('retry-after') && { retryAfterSeconds: retryAfter }) };
      // The hub only sends codes from the shared ErrorCode union (same contract, same repo).
      throw new FirmwardError(parsed.error.code as ErrorCode, parsed.error.message, { detail });
    }
    throw new FirmwardError('internal', `The hub at ${this.baseUrl} answered ${response.status} without saying why.`, { detail: { status: response.status } });
  }
}
