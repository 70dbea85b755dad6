/**
 * The Linux watchdog device (`/dev/watchdog`: softdog or a hardware timer), as Patroni's `LinuxWatchdogDevice`:
 * open write-only (the timer starts), `1` pings, `V` then close disarms (magic close), and the timeout is read and
 * set with the ioctls WDIOC_GETSUPPORT / WDIOC_SETTIMEOUT / WDIOC_GETTIMEOUT on the open descriptor.
 *
 * Node cannot make an ioctl, so the real I/O (`systemIo`) calls libc's `ioctl` through koffi (a maintained FFI
 * package with prebuilt binaries), loaded only here, only when a device is opened: an agent that never arms a
 * Linux watchdog never loads it. The published package carries koffi's binaries for glibc Linux on x64 and arm64
 * in dist/vendor/koffi (scripts/bundle-extras.mjs) and has no dependencies; elsewhere the koffi package is used. `wdctl` is no substitute: the device is single-open, so it cannot change the
 * timeout of the descriptor we hold (see the issue note / README). Everything goes through the `WatchdogIo` seam,
 * so the byte and ioctl sequence is unit-tested without a device.
 */
import { accessSync, closeSync, constants, existsSync, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, endianness } from 'node:os';
import { fileURLToPath } from 'node:url';
import type koffiPackage from 'koffi';
import { errorText } from '../../model/text.js';
import { WatchdogError, type WatchdogDevice } from './device.js';

/** The system calls the device makes. `ioctl` throws an Error naming errno on failure. */
export interface WatchdogIo {
  open(path: string, nonBlocking: boolean): number;
  write(fd: number, bytes: string): void;
  close(fd: number): void;
  ioctl(fd: number, request: number, arg: Buffer): void;
  /** Exists and is writable by us. */
  writable(path: string): boolean;
}

// ---- linux/ioctl.h and linux/watchdog.h ------------------------------------------------------------------------

interface IocLayout {
  readonly none: number;
  readonly write: number;
  readonly read: number;
  readonly sizeBits: number;
}

/** The `_IOC` encoding of an architecture (asm-generic, or the mips/powerpc variant). */
export function iocLayout(machine: string): IocLayout {
  if (/^(mips|ppc)/.test(machine)) return { none: 1, write: 4, read: 2, sizeBits: 13 };
  return { none: 0, write: 1, read: 2, sizeBits: 14 };
}

function ioc(layout: IocLayout, dir: number, nr: number, size: number): number {
  const type = 'W'.charCodeAt(0);
  return ((dir << (16 + layout.sizeBits)) | (size << 16) | (type << 8) | nr) >>> 0;
}

/** sizeof(struct watchdog_info): options, firmware_version (u32 each), identity[32]. */
export const WATCHDOG_INFO_SIZE = 40;

export interface WatchdogRequests {
  readonly getSupport: number;
  readonly setTimeout: number;
  readonly getTimeout: number;
}

export function watchdogRequests(machine: string = arch()): WatchdogRequests {
  const l = iocLayout(machine);
  return {
    getSupport: ioc(l, l.read, 0, WATCHDOG_INFO_SIZE),
    setTimeout: ioc(l, l.read | l.write, 6, 4),
    getTimeout: ioc(l, l.read, 7, 4),
  };
}

export const WDIOF_SETTIMEOUT = 0x0080;
export const WDIOF_MAGICCLOSE = 0x0100;

export interface WatchdogInfo {
  readonly options: number;
  readonly firmwareVersion: number;
  readonly identity: string;
}

const LE = endianness() === 'LE';
const readU32 = (b: Buffer, at: number): number => (LE ? b.readUInt32LE(at) : b.readUInt32BE(at));
const intBuffer = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  if (LE) b.writeInt32LE(v);
  else b.writeInt32BE(v);
  return b;
};
const readInt = (b: Buffer): number => (LE ? b.readInt32LE(0) : b.readInt32BE(0));

// ---- the device ------------------------------------------------------------------------------------------------

export const DEFAULT_DEVICE = '/dev/watchdog';

export class LinuxWatchdogDevice implements WatchdogDevice {
  readonly isNull = false;
  protected fd: number | undefined;
  private support: WatchdogInfo | undefined;

  constructor(
    readonly device: string,
    protected readonly io: WatchdogIo,
    private readonly requests: WatchdogRequests = watchdogRequests(),
  ) {}

  get isRunning(): boolean {
    return this.fd !== undefined;
  }

  isHealthy(): boolean {
    return this.io.writable(this.device);
  }

  protected openNonBlocking(): boolean {
    return false;
  }

  async open(): Promise<void> {
    try {
      this.fd = this.io.open(this.device, this.openNonBlocking());
    } catch (e) {
      throw new WatchdogError(`Can't open watchdog device: ${errorText(e)}`);
    }
  }

  close(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    try {
      this.io.write(fd, 'V');
      this.io.close(fd);
      this.fd = undefined;
    } catch (e) {
      throw new WatchdogError(`Error while closing ${this.describe()}: ${errorText(e)}`);
    }
  }

  canBeDisabled(): boolean {
    return (this.getSupport().options & WDIOF_MAGICCLOSE) !== 0;
  }

  private ioctl(request: number, arg: Buffer): void {
    if (this.fd === undefined) throw new WatchdogError('Watchdog device is closed');
    this.io.ioctl(this.fd, request, arg);
  }

  getSupport(): WatchdogInfo {
    if (this.support === undefined) {
      const buf = Buffer.alloc(WATCHDOG_INFO_SIZE);
      try {
        this.ioctl(this.requests.getSupport, buf);
      } catch (e) {
        throw new WatchdogError(`Could not get information about watchdog device: ${errorText(e)}`);
      }
      this.support = {
        options: readU32(buf, 0),
        firmwareVersion: readU32(buf, 4),
        identity: buf.subarray(8).toString('latin1').replace(/\0+$/, ''),
      };
    }
    return this.support;
  }

  describe(): string {
    const at = this.device === DEFAULT_DEVICE ? '' : ` at ${this.device}`;
    let identity = 'Linux watchdog device';
    let version = '';
    if (this.fd !== undefined) {
      try {
        const s = this.getSupport();
        identity = s.identity;
        version = s.firmwareVersion ? ` (firmware ${s.firmwareVersion})` : '';
      } catch {
        // keep the generic name
      }
    }
    return identity + version + at;
  }

  keepalive(): void {
    if (this.fd === undefined) throw new WatchdogError('Watchdog device is closed');
    try {
      this.io.write(this.fd, '1');
    } catch (e) {
      throw new WatchdogError(`Could not send watchdog keepalive: ${errorText(e)}`);
    }
  }

  hasSetTimeout(): boolean {
    return (this.getSupport().options & WDIOF_SETTIMEOUT) !== 0;
  }

  setTimeout(seconds: number): void {
    const t = Math.trunc(seconds);
    if (!(t > 0 && t < 0xffff)) {
      throw new WatchdogError(`Invalid timeout ${t}. Supported values are between 1 and 65535`);
    }
    try {
      this.ioctl(this.requests.setTimeout, intBuffer(t));
    } catch (e) {
      throw new WatchdogError(`Could not set timeout on watchdog device: ${errorText(e)}`);
    }
  }

  getTimeout(): number {
    const buf = intBuffer(0);
    try {
      this.ioctl(this.requests.getTimeout, buf);
    } catch (e) {
      throw new WatchdogError(`Could not get timeout on watchdog device: ${errorText(e)}`);
    }
    return readInt(buf);
  }
}

// ---- the real system calls -------------------------------------------------------------------------------------

interface Libc {
  readonly ioctl: (fd: number, request: number, type: string, arg: Buffer) => number;
  readonly errno: () => number;
  readonly strerror: (errno: number) => string;
}

let libc: Libc | undefined;

type Koffi = typeof koffiPackage;

/**
 * Where the bundle finds koffi's binary for this platform: dist/vendor/koffi/<platform>_<arch>/koffi.node, seen
 * from the bundle's entry files (dist/*.js) or its chunks (dist/chunks/*.js), wherever this code landed.
 */
export function vendoredKoffiPaths(
  from: string = import.meta.url,
  target = `${process.platform}_${process.arch}`,
): string[] {
  return ['./', '../'].map((up) => fileURLToPath(new URL(`${up}vendor/koffi/${target}/koffi.node`, from)));
}

/**
 * koffi: the binary the package carries for this platform, else the koffi package (a development checkout, or an
 * operator's `npm install koffi` on a platform the package has no binary for).
 */
export async function loadKoffi(
  paths: readonly string[] = vendoredKoffiPaths(),
  importPackage: () => Promise<Koffi> = async () => (await import('koffi')).default,
): Promise<Koffi> {
  const vendored = paths.find((p) => existsSync(p));
  let vendorError = '';
  if (vendored !== undefined) {
    try {
      return createRequire(import.meta.url)(vendored) as Koffi;
    } catch (e) {
      vendorError = `${vendored}: ${errorText(e)}; `;
    }
  }
  try {
    return await importPackage();
  } catch (e) {
    throw new Error(
      `${vendorError}no usable koffi binary for ${process.platform}-${process.arch} in this package (it carries ` +
        `glibc Linux x64 and arm64): install the koffi package next to pgwarden (npm install koffi); ${errorText(e)}`,
    );
  }
}

/** Loads koffi and binds libc's ioctl; once, on the first open of a Linux device. */
async function loadLibc(): Promise<Libc> {
  if (libc) return libc;
  const koffi = await loadKoffi();
  const lib = koffi.load('libc.so.6');
  const ioctl = lib.func('int ioctl(int fd, unsigned long request, ...)') as Libc['ioctl'];
  const strerror = lib.func('const char *strerror(int errnum)') as Libc['strerror'];
  libc = { ioctl, strerror, errno: () => koffi.errno() };
  return libc;
}

/** `WatchdogIo` on this machine; `prepare()` must have resolved before `ioctl` is called. */
export function systemIo(): WatchdogIo & { prepare(): Promise<void> } {
  return {
    async prepare() {
      await loadLibc();
    },
    open: (path, nonBlocking) =>
      openSync(path, constants.O_WRONLY | (nonBlocking ? constants.O_NONBLOCK : 0)),
    write: (fd, bytes) => {
      const buf = Buffer.from(bytes, 'utf8');
      let at = 0;
      while (at < buf.length) at += writeSync(fd, buf, at);
    },
    close: (fd) => closeSync(fd),
    ioctl: (fd, request, arg) => {
      if (!libc) throw new Error('libc is not loaded');
      if (libc.ioctl(fd, request, 'void *', arg) === -1) {
        const e = libc.errno();
        throw new Error(`[Errno ${e}] ${libc.strerror(e)}`);
      }
    },
    writable: (path) => {
      if (!existsSync(path)) return false;
      try {
        accessSync(path, constants.W_OK);
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** The Linux device on the real system: koffi is loaded before the device is first opened. */
export class SystemLinuxWatchdog extends LinuxWatchdogDevice {
  constructor(
    device: string,
    private readonly sys = systemIo(),
  ) {
    super(device, sys);
  }

  override async open(): Promise<void> {
    try {
      await this.sys.prepare();
    } catch (e) {
      throw new WatchdogError(
        `Can't open watchdog device: the ioctl binding failed to load: ${errorText(e)}`,
      );
    }
    await super.open();
  }
}
