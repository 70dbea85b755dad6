/**
 * The agent's watchdog devices (src/agent/watchdog): the Linux device's byte and ioctl sequence through its I/O
 * seam (this machine has no /dev/watchdog), the testing driver's exact bytes (Patroni's TestingWatchdogDevice), and
 * the facade's activation verdicts and log lines (Patroni's Watchdog).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NullWatchdog } from '../../src/agent/watchdog/device.js';
import {
  LinuxWatchdogDevice,
  WDIOF_MAGICCLOSE,
  WDIOF_SETTIMEOUT,
  loadKoffi,
  systemIo,
  vendoredKoffiPaths,
  watchdogRequests,
  type WatchdogIo,
} from '../../src/agent/watchdog/linux.js';
import { TestingWatchdogDevice } from '../../src/agent/watchdog/testing.js';
import { AgentWatchdog, deviceFor, type WatchdogLogger } from '../../src/agent/watchdog/watchdog.js';
import type { WatchdogConfig } from '../../src/config/agent-config.js';

const X64 = watchdogRequests('x64');

/** A fake kernel: records every call; the device answers ioctls like softdog. */
class FakeIo implements WatchdogIo {
  readonly calls: string[] = [];
  exists = true;
  options = WDIOF_MAGICCLOSE | WDIOF_SETTIMEOUT;
  timeout = 60;
  /** GETTIMEOUT answers this instead of what was set (a device that ignores SETTIMEOUT). */
  fixedTimeout: number | undefined;

  open(path: string, nonBlocking: boolean): number {
    this.calls.push(`open ${path}${nonBlocking ? ' nonblock' : ''}`);
    if (!this.exists) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    return 7;
  }
  write(fd: number, bytes: string): void {
    this.calls.push(`write ${fd} ${JSON.stringify(bytes)}`);
  }
  close(fd: number): void {
    this.calls.push(`close ${fd}`);
  }
  ioctl(fd: number, request: number, arg: Buffer): void {
    if (request === X64.getSupport) {
      this.calls.push(`ioctl ${fd} GETSUPPORT`);
      arg.writeUInt32LE(this.options, 0);
      arg.writeUInt32LE(0, 4);
      arg.write('Software Watchdog', 8, 'latin1');
    } else if (request === X64.setTimeout) {
      this.timeout = arg.readInt32LE(0);
      this.calls.push(`ioctl ${fd} SETTIMEOUT ${this.timeout}`);
    } else if (request === X64.getTimeout) {
      this.calls.push(`ioctl ${fd} GETTIMEOUT`);
      arg.writeInt32LE(this.fixedTimeout ?? this.timeout, 0);
    } else {
      throw new Error(`unexpected ioctl ${request.toString(16)}`);
    }
  }
  writable(_path: string): boolean {
    return this.exists;
  }
}

function logger(): WatchdogLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    debug: (t) => lines.push(`DEBUG ${t}`),
    info: (t) => lines.push(`INFO ${t}`),
    warning: (t) => lines.push(`WARNING ${t}`),
    error: (t) => lines.push(`ERROR ${t}`),
  };
}

const CONFIG: WatchdogConfig = {
  mode: 'required',
  device: '/dev/watchdog',
  safetyMargin: 5,
  driver: 'default',
};
const T25 = { timeout: 25, ttl: 30, loopWait: 10 };

function linux(io: FakeIo, config: Partial<WatchdogConfig> = {}) {
  const log = logger();
  const wd = new AgentWatchdog(
    { ...CONFIG, ...config },
    log,
    (c) => new LinuxWatchdogDevice(c.device, io, X64),
  );
  return { wd, log };
}

describe('Linux ioctl request numbers (linux/watchdog.h)', () => {
  it.each([
    ['x64', 0x80285700, 0xc0045706, 0x80045707],
    ['arm64', 0x80285700, 0xc0045706, 0x80045707],
    ['ppc64', 0x40285700, 0xc0045706, 0x40045707],
    ['mipsel', 0x40285700, 0xc0045706, 0x40045707],
  ])('%s', (machine, getSupport, setTimeout, getTimeout) => {
    expect(watchdogRequests(machine)).toEqual({ getSupport, setTimeout, getTimeout });
  });
});

describe('the Linux device through its I/O seam', () => {
  it('arms (open, ioctls), pings, changes the timeout while armed, and disarms with the magic close', async () => {
    const io = new FakeIo();
    const { wd, log } = linux(io);
    expect(await wd.activate(T25)).toBe(true);
    expect(wd.view()).toEqual({ mode: 'required', running: true, deviceUsable: true, safetyMargin: 5 });
    await wd.keepalive(T25, 29_000);
    await wd.keepalive({ timeout: 15, ttl: 20, loopWait: 2 }, 19_500);
    await wd.disable();
    expect(io.calls).toEqual([
      'open /dev/watchdog',
      'ioctl 7 GETSUPPORT',
      'ioctl 7 SETTIMEOUT 25',
      'ioctl 7 GETTIMEOUT',
      'write 7 "1"',
      'write 7 "1"',
      'ioctl 7 SETTIMEOUT 15',
      'ioctl 7 GETTIMEOUT',
      'write 7 "V"',
      'close 7',
    ]);
    expect(log.lines).toEqual([
      'INFO Software Watchdog activated with 25 second timeout, timing slack 15 seconds',
      'INFO Software Watchdog updated with 15 second timeout, timing slack 13 seconds',
    ]);
    expect(wd.running).toBe(false);
  });

  it('does not ping when the lock would expire before the device fires', async () => {
    const io = new FakeIo();
    const { wd, log } = linux(io);
    await wd.activate(T25);
    io.calls.length = 0;
    await wd.keepalive(T25, 24_000);
    await wd.keepalive(T25, undefined);
    expect(io.calls).toEqual([]);
    expect(log.lines.at(-1)).toBe(
      'WARNING not pinging the watchdog: the leader lock expires in 24 seconds, before its 25 second timeout',
    );
  });

  it('required and no device: activation fails with Patroni lines, and the node is no longer healthy', async () => {
    const io = new FakeIo();
    io.exists = false;
    const { wd, log } = linux(io);
    expect(wd.view().deviceUsable).toBe(false);
    expect(await wd.activate(T25)).toBe(false);
    expect(log.lines).toEqual([
      "WARNING Could not activate Linux watchdog device: Can't open watchdog device: ENOENT: no such file or directory, open '/dev/watchdog'",
      'ERROR Configuration requires watchdog, but watchdog could not be configured.',
    ]);
    io.exists = true;
    // As Patroni: the null device stays until the configuration changes.
    expect(wd.view()).toMatchObject({ running: false, deviceUsable: false });
  });

  it('automatic and no device: runs without, says so once', async () => {
    const io = new FakeIo();
    io.exists = false;
    const { wd, log } = linux(io, { mode: 'automatic' });
    expect(await wd.activate(T25)).toBe(true);
    expect(await wd.activate(T25)).toBe(true);
    expect(io.calls).toEqual(['open /dev/watchdog']);
    expect(log.lines).toEqual([
      "WARNING Could not activate Linux watchdog device: Can't open watchdog device: ENOENT: no such file or directory, open '/dev/watchdog'",
    ]);
  });

  it('a device that keeps a longer timeout is refused when required', async () => {
    const io = new FakeIo();
    io.fixedTimeout = 60;
    const { wd, log } = linux(io);
    expect(await wd.activate(T25)).toBe(false);
    expect(log.lines).toContain(
      'ERROR Configuration requires watchdog, but a safe watchdog timeout 25 could not be configured. Watchdog timeout is 60.',
    );
  });

  it('a timeout shorter than loop_wait is closed again (magic close)', async () => {
    const io = new FakeIo();
    io.fixedTimeout = 5;
    const { wd, log } = linux(io, { mode: 'automatic' });
    expect(await wd.activate(T25)).toBe(true);
    expect(io.calls.slice(-2)).toEqual(['write 7 "V"', 'close 7']);
    expect(log.lines).toEqual([
      'ERROR loop_wait of 10 seconds is too long for watchdog 5 second timeout',
      'INFO Disabling watchdog due to unsafe timeout.',
    ]);
  });

  it('a device without magic close is pinged once more on disable, with a warning', async () => {
    const io = new FakeIo();
    io.options = WDIOF_SETTIMEOUT;
    const { wd, log } = linux(io);
    expect(await wd.activate(T25)).toBe(true);
    io.calls.length = 0;
    await wd.disable();
    expect(io.calls).toEqual(['write 7 "1"', 'ioctl 7 GETTIMEOUT', 'write 7 "V"', 'close 7']);
    expect(log.lines).toContain(
      "WARNING Watchdog implementation can't be disabled. System will reboot after 25 seconds when watchdog times out.",
    );
  });

  it('ttl shorter than 2x loop_wait: not supported', async () => {
    const io = new FakeIo();
    const { wd, log } = linux(io);
    expect(await wd.activate({ timeout: 7, ttl: 12, loopWait: 10 })).toBe(false);
    expect(io.calls).toEqual([]);
    expect(log.lines[0]).toBe(
      'WARNING Watchdog not supported because leader TTL 12 is less than 2x loop_wait 10',
    );
  });

  it('the real ioctl binding (koffi) reaches the kernel: /dev/null answers ENOTTY', async () => {
    const io = systemIo();
    await io.prepare();
    const fd = io.open('/dev/null', false);
    try {
      expect(() => io.ioctl(fd, X64.getTimeout, Buffer.alloc(4))).toThrow(
        '[Errno 25] Inappropriate ioctl for device',
      );
    } finally {
      io.close(fd);
    }
  });
});

describe('the ioctl binding: koffi’s binary from the package (dist/vendor/koffi), else the koffi package', () => {
  const target = `${process.platform}_${process.arch}`;
  // The binary npm installed for this machine, standing in for the one the build copies into dist/vendor.
  const hostBinary = resolve(
    import.meta.dirname,
    `../../node_modules/@koromix/koffi-${process.platform}-${process.arch}/${target}/koffi.node`,
  );
  const noPackage = async (): Promise<never> => {
    throw new Error("Cannot find package 'koffi'");
  };

  it('is looked for next to the bundle’s entry files and next to its chunks', () => {
    expect(vendoredKoffiPaths('file:///opt/pgwarden/dist/chunks/linux-AB12.js', 'linux_arm64')).toEqual([
      '/opt/pgwarden/dist/chunks/vendor/koffi/linux_arm64/koffi.node',
      '/opt/pgwarden/dist/vendor/koffi/linux_arm64/koffi.node',
    ]);
    expect(vendoredKoffiPaths('file:///opt/pgwarden/dist/agent.js', 'linux_x64')[0]).toBe(
      '/opt/pgwarden/dist/vendor/koffi/linux_x64/koffi.node',
    );
  });

  it('loads the vendored binary without the koffi package', async () => {
    const koffi = await loadKoffi(['/nonexistent/koffi.node', hostBinary], noPackage);
    expect(koffi.version).toBe('3.3.4');
    expect(typeof koffi.load).toBe('function');
  });

  it('with neither, says which platforms the package carries and how to add koffi', async () => {
    await expect(loadKoffi(['/nonexistent/koffi.node'], noPackage)).rejects.toThrow(
      `no usable koffi binary for ${process.platform}-${process.arch} in this package (it carries glibc Linux x64 ` +
        "and arm64): install the koffi package next to pgwarden (npm install koffi); Cannot find package 'koffi'",
    );
  });

  it('a vendored binary that does not load is named, then the package is tried', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgwarden-koffi-'));
    try {
      const broken = join(dir, 'koffi.node');
      writeFileSync(broken, 'not an ELF object');
      const err = await loadKoffi([broken], noPackage).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/^\/.+\/koffi\.node: .+; no usable koffi binary for /);
      expect((await loadKoffi([broken])).version).toBe('3.3.4');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the testing driver writes what Patroni’s TestingWatchdogDevice writes', () => {
  it('Ctimeout=N, pings, magic close; opened non-blocking', async () => {
    const io = new FakeIo();
    const log = logger();
    const wd = new AgentWatchdog(
      { ...CONFIG, driver: 'testing', device: '/tmp/w.fifo' },
      log,
      (c) => new TestingWatchdogDevice(c.device, io),
    );
    expect(await wd.activate({ timeout: 15, ttl: 20, loopWait: 2 })).toBe(true);
    await wd.keepalive({ timeout: 15, ttl: 20, loopWait: 2 }, 19_000);
    await wd.keepalive({ timeout: 25, ttl: 30, loopWait: 2 }, 29_000);
    await wd.disable();
    expect(io.calls).toEqual([
      'open /tmp/w.fifo nonblock',
      'write 7 "Ctimeout=15\\n"',
      'write 7 "1"',
      'write 7 "1"',
      'write 7 "Ctimeout=25\\n"',
      'write 7 "V"',
      'close 7',
    ]);
    expect(log.lines[0]).toBe(
      'INFO Watchdog test harness at /tmp/w.fifo activated with 15 second timeout, timing slack 13 seconds',
    );
  });
});

describe('which device a configuration gets (Patroni’s get_impl)', () => {
  it.each([
    ['default', 'linux', 'SystemLinuxWatchdog'],
    ['testing', 'linux', 'TestingWatchdogDevice'],
    ['default', 'darwin', 'NullWatchdog'],
    ['bogus', 'linux', 'NullWatchdog'],
  ])('driver %s on %s: %s', (driver, platform, kind) => {
    expect(deviceFor({ ...CONFIG, driver }, platform).constructor.name).toBe(kind);
  });

  it('required with no implementation is refused at start; off never opens anything', () => {
    const log = logger();
    expect(new AgentWatchdog({ ...CONFIG, driver: 'bogus' }, log).unsupportedButRequired).toBe(true);
    const off = new AgentWatchdog({ ...CONFIG, mode: 'off' }, log, () => {
      throw new Error('no device for mode off');
    });
    expect(off.view()).toEqual({ mode: 'off', running: false, deviceUsable: false, safetyMargin: 5 });
    expect(new NullWatchdog().getTimeout()).toBe(1000000000);
  });

  it('a reload to mode off disarms at once', async () => {
    const io = new FakeIo();
    const { wd } = linux(io);
    await wd.activate(T25);
    await wd.reload({ ...CONFIG, mode: 'off' });
    expect(io.calls.slice(-2)).toEqual(['write 7 "V"', 'close 7']);
    expect(wd.view().mode).toBe('off');
  });
});
