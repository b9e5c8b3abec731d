/**
 * `firmward release …`: the maker's commands, registered on the firmward command line. Every
 * command is one call into the library; the library is loaded only when a release command runs,
 * so the household commands stay quick to start.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { FirmwardError } from '@firmward/core';
import type { EpochMs } from '@firmward/core';
import type { RepositoryOptions, RepositoryStatus, RootSigningResult } from './repository.ts';

export interface ReleaseCliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: { write(text: string): unknown };
  /** Sets the process exit code (verify reports problems with 1). */
  setExitCode(code: number): void;
  /** The clock (tests); default Date.now. */
  now?: () => EpochMs;
}

interface GlobalOptions { repo?: string; keys?: string[]; newKeys?: string; passphraseFile?: string }

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function count(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > 3650) throw new InvalidArgumentError(`must be a whole number from ${min} to 3650.`);
    return n;
  };
}

function short(keyId: string): string {
  return keyId.slice(0, 16);
}

function signingLine(result: RootSigningResult): string {
  const before = result.previousRootSignatures === undefined ? '' : ` and ${result.previousRootSignatures.valid} of ${result.previousRootSignatures.threshold} from the keys of version ${result.version - 1}`;
  return result.complete
    ? `Root version ${result.version} is fully signed (${result.signatures.valid} of ${result.signatures.threshold}${before}).`
    : `Root version ${result.version} has ${result.signatures.valid} of ${result.signatures.threshold} root signatures${before}: sign it with "firmward release sign-root" where the other root keys are; publish refuses it until then.`;
}

function formatStatus(status: RepositoryStatus): string {
  const lines = [`Release repository ${status.dir}`];
  for (const role of status.roles) {
    lines.push(`  ${role.role.padEnd(10)} version ${role.version}, expires ${role.expires}, signed ${role.signatures.valid}/${role.threshold} (keys ${role.keyIds.map(short).join(', ')})`);
  }
  for (const vendor of status.vendors) {
    lines.push(`  vendor ${vendor.name}: version ${vendor.version}, expires ${vendor.expires}, signed ${vendor.signatures.valid}/${vendor.threshold}, ${vendor.releases.length} release${vendor.releases.length === 1 ? '' : 's'}`);
    for (const release of vendor.releases) {
      lines.push(`    ${release.path} (${release.lengthBytes} bytes)${release.retracted ? ` RETRACTED: ${release.retractedReason ?? ''}` : ''}`);
    }
  }
  lines.push(status.problems.length === 0 ? 'Ready to publish.' : `Not ready to publish:\n${status.problems.map((p) => `  - ${p.message}`).join('\n')}`);
  return lines.join('\n');
}

/**
 * Adds `release` and its subcommands to `program`.
 *
 * @example
 * registerReleaseCommands(program, { env: process.env, stdout: process.stdout, setExitCode: (c) => { exitCode = c; } });
 */
export function registerReleaseCommands(program: Command, io: ReleaseCliIo): Command {
  const print = (text: string): void => {
    io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  };
  const printJson = (value: unknown): void => print(JSON.stringify(value, null, 2));

  const release = program.command('release')
    .description('the maker\'s signed release repository: keys, releases, publishing and checking it as a device would')
    .option('--repo <dir>', 'the working folder (default: FIRMWARD_RELEASE_REPO or the current folder)')
    .option('--keys <dir>', 'a folder of key files; repeat for several (default: <repo>/keys)', collect)
    .option('--new-keys <dir>', 'where new keys are written (default: the first --keys folder)')
    .option('--passphrase-file <file>', 'a file holding the key passphrase (default: FIRMWARD_RELEASE_PASSPHRASE)');

  const globals = (command: Command): GlobalOptions => command.optsWithGlobals<GlobalOptions>();
  const passphrase = (opts: GlobalOptions) => (): string => {
    const fromEnv = io.env['FIRMWARD_RELEASE_PASSPHRASE'];
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    if (opts.passphraseFile !== undefined) {
      try {
        return readFileSync(opts.passphraseFile, 'utf8').replace(/\r?\n$/, '');
      } catch (error) {
        throw new FirmwardError('not_found', `The passphrase file ${opts.passphraseFile} cannot be read.`, { cause: error });
      }
    }
    throw new FirmwardError('unauthorized', 'A signing key is needed: set FIRMWARD_RELEASE_PASSPHRASE or pass --passphrase-file.');
  };
  const repoDir = (opts: GlobalOptions): string => opts.repo ?? (io.env['FIRMWARD_RELEASE_REPO'] !== undefined && io.env['FIRMWARD_RELEASE_REPO'] !== '' ? io.env['FIRMWARD_RELEASE_REPO'] : '.');
  const repositoryOptions = (opts: GlobalOptions): RepositoryOptions => ({
    ...(opts.keys === undefined ? {} : { keyDirs: opts.keys }),
    ...(opts.newKeys === undefined ? {} : { newKeysDir: opts.newKeys }),
    passphrase: passphrase(opts),
    ...(io.now === undefined ? {} : { now: io.now }),
  });
  const open = async (command: Command) => {
    const { ReleaseRepository } = await import('./repository.ts');
    const opts = globals(command);
    return ReleaseRepository.open(repoDir(opts), repositoryOptions(opts));
  };

  release.command('init')
    .description('create the repository: root, targets, snapshot and timestamp keys, and one role per vendor')
    .option('--root-keys <n>', 'how many root keys (default 3)', count(1))
    .option('--root-threshold <n>', 'how many root keys must sign (default 2)', count(1))
    .option('--root-key-file <file>', 'use this key file\'s public key as a root key (made elsewhere with keygen); repeatable', collect)
    .option('--vendor <name>', 'a vendor with its own delegated role; repeatable', collect)
    .option('--vendor-keys <n>', 'how many keys each vendor role gets (default 1)', count(1))
    .option('--vendor-threshold <n>', 'how many of them must sign (default 1)', count(1))
    .option('--root-days <n>', 'root validity in days (default 365)', count(1))
    .option('--targets-days <n>', 'targets validity in days (default 90)', count(1))
    .option('--vendor-days <n>', 'vendor role validity in days (default 90)', count(1))
    .option('--snapshot-days <n>', 'snapshot validity in days (default 7)', count(1))
    .option('--timestamp-days <n>', 'timestamp validity in days (default 1)', count(1))
    .option('--json', 'print the result as JSON')
    .action(async (opts: {
      rootKeys?: number; rootThreshold?: number; rootKeyFile?: string[]; vendor?: string[]; vendorKeys?: number; vendorThreshold?: number;
      rootDays?: number; targetsDays?: number; vendorDays?: number; snapshotDays?: number; timestampDays?: number; json?: boolean;
    }, command: Command) => {
      const { ReleaseRepository } = await import('./repository.ts');
      const g = globals(command);
      const expiryDays = Object.fromEntries(([
        ['root', opts.rootDays], ['targets', opts.targetsDays], ['vendor', opts.vendorDays], ['snapshot', opts.snapshotDays], ['timestamp', opts.timestampDays],
      ] as const).filter(([, days]) => days !== undefined));
      const vendorKeys = { ...(opts.vendorKeys === undefined ? {} : { keyCount: opts.vendorKeys }), ...(opts.vendorThreshold === undefined ? {} : { threshold: opts.vendorThreshold }) };
      const { repository, createdKeys } = await ReleaseRepository.init(repoDir(g), {
        root: {
          ...(opts.rootKeys === undefined ? {} : { keyCount: opts.rootKeys }),
          ...(opts.rootThreshold === undefined ? {} : { threshold: opts.rootThreshold }),
          keyFiles: opts.rootKeyFile ?? [],
        },
        vendors: (opts.vendor ?? []).map((name) => ({ name, ...vendorKeys })),
        expiryDays,
      }, repositoryOptions(g));
      const status = repository.status();
      if (opts.json === true) {
        printJson({ dir: repository.dir, createdKeys, status });
        return;
      }
      print(`Created the release repository in ${repository.dir} with ${repository.vendors.length} vendor role${repository.vendors.length === 1 ? '' : 's'}.`);
      for (const key of createdKeys) print(`  new ${key.role} key ${short(key.keyId)} in ${key.file}`);
      const root = status.roots.at(-1);
      if (root !== undefined && root.signatures.valid < root.signatures.threshold) {
        print(`Root version 1 has ${root.signatures.valid} of ${root.signatures.threshold} signatures: sign it with "firmward release sign-root" where the other root keys are.`);
      }
      print('Move the root key files to offline storage (a USB stick in a drawer); only targets, snapshot, timestamp and vendor keys need to stay here.');
    });

  release.command('add-vendor')
    .description('add a vendor with its own delegated role, trusted only for <vendor>/<model>/<version>/<file>')
    .argument('<name>')
    .option('--key-count <n>', 'how many keys the vendor role gets (default 1)', count(1))
    .option('--threshold <n>', 'how many of them must sign (default 1)', count(1))
    .option('--key-file <file>', 'use this key file\'s public key (made elsewhere with keygen); repeatable', collect)
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { keyCount?: number; threshold?: number; keyFile?: string[]; json?: boolean }, command: Command) => {
      const repository = await open(command);
      const result = await repository.addVendor({
        name, keyFiles: opts.keyFile ?? [],
        ...(opts.keyCount === undefined ? {} : { keyCount: opts.keyCount }), ...(opts.threshold === undefined ? {} : { threshold: opts.threshold }),
      });
      if (opts.json === true) printJson(result);
      else print(`Added the vendor ${name}, signed by ${result.keyIds.map(short).join(', ')}.`);
    });

  release.command('add')
    .description('add a firmware image with its signed description (a JSON file checked before anything is written)')
    .argument('<image>')
    .requiredOption('--custom <file>', 'the release description as JSON: vendor, model, version, hardwareRevisions, recovery, …')
    .option('--file-name <name>', 'the file name in the repository (default: the image\'s own)')
    .option('--json', 'print the result as JSON')
    .action(async (image: string, opts: { custom: string; fileName?: string; json?: boolean }, command: Command) => {
      let custom: unknown;
      try {
        custom = JSON.parse(readFileSync(opts.custom, 'utf8'));
      } catch (error) {
        throw new FirmwardError('invalid_input', `The release description ${opts.custom} cannot be read as JSON.`, { cause: error });
      }
      const repository = await open(command);
      const result = await repository.add({ image, custom, ...(opts.fileName === undefined ? {} : { fileName: opts.fileName }) });
      if (opts.json === true) printJson(result);
      else print(`Added ${result.path} (${result.lengthBytes} bytes, sha256 ${result.sha256}); publish to make it available.`);
    });

  release.command('retract')
    .description('mark a released version as bad: never offered again, devices running it are updated first')
    .argument('<release>', '<vendor>/<model>/<version>')
    .requiredOption('--reason <text>', 'why, in one sentence')
    .option('--json', 'print the result as JSON')
    .action(async (target: string, opts: { reason: string; json?: boolean }, command: Command) => {
      const result = await (await open(command)).retract(target, opts.reason);
      if (opts.json === true) printJson(result);
      else print(`Retracted ${result.path}; publish to tell devices.`);
    });

  release.command('rotate')
    .description('replace the keys of a role (root, targets, snapshot, timestamp or a vendor)')
    .argument('<role>')
    .option('--remove <keyid>', 'drop only this key (id or its first 8+ characters); repeatable (default: all of the role\'s keys)', collect)
    .option('--add-key <file>', 'add this key file\'s public key; repeatable', collect)
    .option('--generate <n>', 'how many fresh keys to make (default: as many as are removed)', count(0))
    .option('--threshold <n>', 'the new threshold (default: unchanged)', count(1))
    .option('--json', 'print the result as JSON')
    .action(async (role: string, opts: { remove?: string[]; addKey?: string[]; generate?: number; threshold?: number; json?: boolean }, command: Command) => {
      const result = await (await open(command)).rotate(role, {
        ...(opts.remove === undefined ? {} : { remove: opts.remove }), ...(opts.addKey === undefined ? {} : { addKeyFiles: opts.addKey }),
        ...(opts.generate === undefined ? {} : { generate: opts.generate }), ...(opts.threshold === undefined ? {} : { threshold: opts.threshold }),
      });
      if (opts.json === true) {
        printJson(result);
        return;
      }
      print(`The ${role} role is now signed by ${result.keyIds.map(short).join(', ')}.`);
      for (const key of result.createdKeys) print(`  new ${key.role} key ${short(key.keyId)} in ${key.file}`);
      if (result.root !== undefined) print(signingLine(result.root));
    });

  release.command('renew-root')
    .description('a new root version with the same keys and a fresh expiry')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const result = await (await open(command)).renewRoot();
      if (opts.json === true) printJson(result);
      else print(signingLine(result));
    });

  release.command('refresh')
    .description('new timestamp and snapshot versions before they expire (run it from cron, then publish)')
    .option('--within-days <n>', 're-sign targets and vendor roles expiring within this many days (default: the snapshot period)', count(0))
    .option('--json', 'print the result as JSON')
    .action(async (opts: { withinDays?: number; json?: boolean }, command: Command) => {
      const result = await (await open(command)).refresh(opts.withinDays === undefined ? {} : { withinDays: opts.withinDays });
      if (opts.json === true) {
        printJson(result);
        return;
      }
      print(`Refreshed: timestamp version ${result.timestampVersion}, snapshot version ${result.snapshotVersion}${result.renewed.length > 0 ? `, re-signed ${result.renewed.join(', ')}` : ''}; publish to make it current.`);
      for (const warning of result.warnings) print(`Warning: ${warning}`);
    });

  release.command('sign-root')
    .description('add root signatures: to a root file carried from the working folder, or to the repository\'s newest root')
    .argument('[file]', 'a root file to sign in place (default: the newest root of --repo)')
    .option('--key <file>', 'a root key file; repeatable (default for the repository: every root key in the key folders)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (file: string | undefined, opts: { key?: string[]; json?: boolean }, command: Command) => {
      if (file !== undefined) {
        const { signRootFile } = await import('./repository.ts');
        const result = await signRootFile(file, opts.key ?? [], passphrase(globals(command))());
        if (opts.json === true) printJson(result);
        else {
          print(`Signed root version ${result.version} in ${file} with ${result.signedBy.map((k) => short(k.keyId)).join(', ')}; bring it back and run "firmward release import-root ${file}".`);
          for (const key of result.signedBy.filter((k) => !k.listed)) print(`Note: ${short(key.keyId)} is not a key of this root version; it counts only if it is a root key of the version before.`);
        }
        return;
      }
      const result = await (await open(command)).signRoot(opts.key);
      if (opts.json === true) printJson(result);
      else print(signingLine(result));
    });

  release.command('import-root')
    .description('merge the signatures of a root file signed on another machine into the repository')
    .argument('<file>')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, opts: { json?: boolean }, command: Command) => {
      const result = await (await open(command)).importRootSignatures(file);
      if (opts.json === true) printJson(result);
      else print(signingLine(result));
    });

  release.command('keygen')
    .description('make a key file (for example a root key on the machine that will keep it)')
    .argument('<dir>', 'the folder the key file goes into')
    .option('--label <name>', 'what the key is for, used in the file name', 'root')
    .option('--public-out <file>', 'also write its public half alone (to hand to the machine that builds the root)')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, opts: { label: string; publicOut?: string; json?: boolean }, command: Command) => {
      const { generateSigningKey, writeKeyFile, writePublicKeyFile } = await import('./keys.ts');
      const key = generateSigningKey();
      const file = await writeKeyFile(dir, opts.label, key, passphrase(globals(command))());
      if (opts.publicOut !== undefined) await writePublicKeyFile(opts.publicOut, opts.label, key);
      if (opts.json === true) printJson({ keyId: key.keyId, file, ...(opts.publicOut === undefined ? {} : { publicFile: opts.publicOut }) });
      else print(`Made key ${short(key.keyId)} in ${file}${opts.publicOut === undefined ? '' : ` (public half in ${opts.publicOut})`}.`);
    });

  release.command('status')
    .description('versions, expiry dates, signatures and releases, and whether the repository can be published')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const status = (await open(command)).status();
      if (opts.json === true) printJson(status);
      else print(formatStatus(status));
    });

  release.command('publish')
    .description('write a static folder any HTTP server or CDN can serve (refused while metadata is under-signed or expired)')
    .argument('<outDir>')
    .option('--json', 'print the result as JSON')
    .action(async (outDir: string, opts: { json?: boolean }, command: Command) => {
      const result = await (await open(command)).publish(outDir);
      if (opts.json === true) {
        printJson(result);
        return;
      }
      print(`Published timestamp version ${result.timestampVersion} to ${result.outDir} (${result.imagesWritten} new image${result.imagesWritten === 1 ? '' : 's'}).`);
      print(`Ship devices with ${result.outDir}/${result.shipRootFile} (root version ${result.rootVersion}); devices holding an older root still follow the chain.`);
    });

  release.command('verify')
    .description('check a published repository (URL or folder) exactly as a device would, image by image')
    .argument('<source>', 'the repository URL, or the published folder')
    .requiredOption('--root <file>', 'the trusted root.json to start from (the one devices ship with)')
    .option('--no-images', 'check the metadata only, without downloading the images')
    .option('--json', 'print the report as JSON')
    .action(async (source: string, opts: { root: string; images: boolean; json?: boolean }) => {
      const { verifyRepository } = await import('./verify.ts');
      const report = await verifyRepository(source, { trustedRoot: opts.root, images: opts.images });
      if (!report.ok) io.setExitCode(1);
      if (opts.json === true) {
        printJson(report);
        return;
      }
      print(`${source}: root version ${report.rootVersion}, timestamp ${report.timestampVersion}, snapshot ${report.snapshotVersion}, targets ${report.targetsVersion}.`);
      for (const vendor of report.vendors) {
        print(`  ${vendor.role} (version ${vendor.version}): ${vendor.targets.length} release${vendor.targets.length === 1 ? '' : 's'}`);
        for (const target of vendor.targets) {
          const state = target.ok ? (opts.images ? 'verified' : 'trusted') : `REFUSED: ${target.problem?.message ?? ''}`;
          print(`    ${target.path} ${state}${target.retracted ? ` (retracted: ${target.retractedReason ?? ''})` : ''}`);
        }
      }
      print(report.ok ? 'Everything verifies.' : `${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} found.`);
    });

  return release;
}
