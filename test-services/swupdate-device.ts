/**
 * One device run by Debian's real SWUpdate in suricatta mode: its own folder (the slot file, its
 * config with an `identify` section, its own TMPDIR for the IPC sockets), started and stopped by
 * the test. A restart with `-c 2` is the device coming back from its reboot into the new image.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface SwupdateDeviceOptions {
  controllerId: string;
  /** The folder of this device: slot.img, swupdate.cfg, tmp/. */
  dir: string;
  /** The signing certificate the device trusts (`-k`). */
  cert: string;
  /** `board:rev` for `-H`. */
  board: string;
  /** Attributes it sends in configData (its `identify` section). */
  identify: () => Record<string, string>;
  /** `GatewayToken x` is passed as `-g x`, `TargetToken x` as `-k x`. */
  auth: { gatewayToken: string } | { targetToken: string };
  /** `-p`: seconds between polls until the server's answer says (SWUpdate's default is 45 s). */
  pollSeconds?: number;
  /** `-n`: SWUpdate's own download speed limit (e.g. "1M"), so a download lasts long enough to be interrupted. */
  maxDownloadSpeed?: string;
}

export class SwupdateDevice {
  readonly o: SwupdateDeviceOptions;
  readonly slot: string;
  /** Everything it printed, across runs. */
  readonly output: string[] = [];
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();

  constructor(o: SwupdateDeviceOptions) {
    this.o = o;
    this.slot = path.join(o.dir, 'slot.img');
    mkdirSync(path.join(o.dir, 'tmp'), { recursive: true });
  }

  get running(): boolean {
    return this.#child !== null;
  }

  /** Starts `swupdate` against the hub at `url`; `confirm` 2 reports the update installed after a "reboot". */
  start(url: string, confirm?: 2 | 3): void {
    if (this.#child) throw new Error(`${this.o.controllerId} is already running`);
    const cfg = path.join(this.o.dir, 'swupdate.cfg');
    const identify = Object.entries(this.o.identify()).map(([name, value]) => `{ name = "${name}"; value = "${value}"; }`).join(', ');
    writeFileSync(cfg, `globals: { loglevel = 5; };\nidentify: ( ${identify} );\n`);
    const auth = 'gatewayToken' in this.o.auth ? `-g ${this.o.auth.gatewayToken}` : `-k ${this.o.auth.targetToken}`;
    const extra = [
      ...(confirm === undefined ? [] : [`-c ${confirm}`]),
      ...(this.o.pollSeconds === undefined ? [] : [`-p ${this.o.pollSeconds}`]),
      ...(this.o.maxDownloadSpeed === undefined ? [] : [`-n ${this.o.maxDownloadSpeed}`]),
    ];
    const suricatta = [`-t DEFAULT -u ${url} -i ${this.o.controllerId} ${auth} -r 5 -w 1`, ...extra].join(' ');
    const child = spawn('swupdate', ['-v', '-k', this.o.cert, '-H', this.o.board, '-f', cfg, '-u', suricatta], {
      cwd: this.o.dir,
      // Its own TMPDIR: the IPC sockets live there, so devices on one machine do not meet.
      env: { ...process.env, TMPDIR: path.join(this.o.dir, 'tmp') },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: SWUpdate forks helpers, and the whole device stops together.
      detached: true,
    });
    const take = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') this.output.push(`[${this.o.controllerId}] ${line}`);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** The device loses power: SIGTERM to its group, SIGKILL after a short grace (SWUpdate may hang on SIGTERM). */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child?.pid) return;
    this.#child = null;
    const group = -child.pid;
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(group, s);
      } catch {
        // Already gone.
      }
    };
    signal('SIGTERM');
    const grace = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 1500).unref());
    if ((await Promise.race([this.#exited.then(() => 'exited' as const), grace])) === 'timeout') signal('SIGKILL');
    await this.#exited;
    // Helpers of the group that outlived the parent.
    signal('SIGKILL');
  }

  /** The last lines it printed, for a failure message. */
  tail(lines = 40): string {
    return this.output.slice(-lines).join('\n');
  }
}
