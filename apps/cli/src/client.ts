/**
 * A typed client for the hub's HTTP API, shared by the CLI, its tests and the dashboard
 * (STYLE principle 13: one typed wire contract). The hub's sentence travels unchanged: a failed
 * call throws a FirmwardError with the hub's code and message.
 */
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { FirmwardError } from '@firmward/core';
import type { ErrorCode, JobState } from '@firmward/core';
import type { EventQuery, HistoryEvent } from '@firmward/ports';
// Types only (erased at run time): the read models are defined once, beside the HubService.
import type {
  DeviceSettingsPatch, DeviceView, HealthView, HomeSettingsPatch, HomeView, JobView, RolloutView, StartRolloutInput,
} from '../../hub/src/service.ts';

export type { DeviceSettingsPatch, DeviceView, HealthView, HomeSettingsPatch, HomeView, JobView, RolloutView, StartRolloutInput };

export interface HubClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  token: string;
  /** Per request, except the event stream; default 30 s. */
  timeoutMs?: number;
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
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: HubClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
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

  /**
   * The hub's live history, as it happens. Ends when `signal` aborts or the hub closes the stream.
   *
   * @example
   * for await (const event of hub.streamEvents({ deviceId, signal })) console.log(event.message);
   */
  async *streamEvents(options: EventStreamOptions = {}): AsyncGenerator<HistoryEvent> {
    const path = `/api/v1/events/stream${queryString({ homeId: options.homeId, deviceId: options.deviceId })}`;
    const response = await this.#send('GET', path, undefined, options.signal ?? null, 'text/event-stream');
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
      throw new FirmwardError('hub_unreachable', `The connection to the hub at ${this.baseUrl} broke off.`, { cause: error });
    } finally {
      reader.releaseLock();
    }
  }

  /** Where a device downloads a release's image from this hub. */
  firmwareUrl(releaseId: string): string {
    return `${this.baseUrl}/firmware/${releaseId.split('/').map(encodeURIComponent).join('/')}`;
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.#send(method, path, body, AbortSignal.timeout(this.#timeoutMs), 'application/json');
    try {
      return await response.json() as T;
    } catch (error) {
      throw new FirmwardError('internal', `The hub at ${this.baseUrl} sent an answer that is not JSON.`, { cause: error });
    }
  }

  async #send(method: string, path: string, body: unknown, signal: AbortSignal | null, accept: string): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}`, accept };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await this.#fetch(`${this.baseUrl}${path}`, {
        method, headers, signal, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      if (error instanceof DOMException && error.name === 'TimeoutError') {
        throw new FirmwardError('hub_unreachable', `The hub at ${this.baseUrl} did not answer in time.`, { cause: error });
      }
      throw new FirmwardError('hub_unreachable', `Cannot reach the hub at ${this.baseUrl}; is it running?`, { cause: error });
    }
    if (response.ok) return response;
    let parsed: unknown = null;
    try {
      parsed = await response.json();
    } catch {
      // fall through: the status alone has to do
    }
    if (isErrorBody(parsed)) {
      // The hub only sends codes from the shared ErrorCode union (same contract, same repo).
      throw new FirmwardError(parsed.error.code as ErrorCode, parsed.error.message, { detail: { status: response.status } });
    }
    throw new FirmwardError('internal', `The hub at ${this.baseUrl} answered ${response.status} without saying why.`, { detail: { status: response.status } });
  }
}
