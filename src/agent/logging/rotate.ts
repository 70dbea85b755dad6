/**
 * `log.dir`: lines go to `<dir>/patroni.log` (Patroni's file is named after its `patroni.log` module), rotated as
 * Python's RotatingFileHandler does: before a line that would bring the file to `file_size` bytes or more, the file
 * becomes `patroni.log.1`, `.1` becomes `.2` ... and the oldest beyond `file_num` is removed. Every open sets the
 * file's mode to `log.mode` (default 0666 less the umask), as Patroni does. Writes are synchronous: a log line is
 * on disk before the agent goes on, and nothing is lost at exit.
 */
import {
  closeSync,
  chmodSync,
  existsSync,
  fstatSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export const LOG_FILE_NAME = 'patroni.log';
export const DEFAULT_FILE_SIZE = 25_000_000;
export const DEFAULT_FILE_NUM = 4;

export interface RotationSettings {
  readonly dir: string;
  /** Bytes; 0 never rotates. */
  readonly fileSize: number;
  /** Rotated files kept; 0 keeps none (the file then grows, as in Python). */
  readonly fileNum: number;
  /** Undefined: 0666 less the umask. */
  readonly mode?: number;
}

export class RotatingFile {
  readonly path: string;
  private fd: number | undefined;
  private settings: RotationSettings;

  constructor(settings: RotationSettings) {
    this.settings = settings;
    this.path = join(settings.dir, LOG_FILE_NAME);
    this.open();
  }

  /** New size, count or mode for the same file (a reload). */
  update(settings: RotationSettings): void {
    this.settings = settings;
    if (this.fd !== undefined) chmodSync(this.path, this.fileMode());
  }

  write(line: string): void {
    if (this.shouldRotate(line)) this.rotate();
    if (this.fd === undefined) this.open();
    writeSync(this.fd!, line);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private fileMode(): number {
    // process.umask() reads the mask without changing it.
    return this.settings.mode ?? 0o666 & ~process.umask();
  }

  private open(): void {
    this.fd = openSync(this.path, 'a', this.fileMode());
    chmodSync(this.path, this.fileMode());
  }

  private shouldRotate(line: string): boolean {
    // Python: never roll over anything but a regular file; the line's length is counted in characters.
    if (this.settings.fileSize <= 0) return false;
    if (existsSync(this.path) && !statSync(this.path).isFile()) return false;
    return fstatSync(this.fd!).size + [...line].length >= this.settings.fileSize;
  }

  private rotate(): void {
    this.close();
    const n = this.settings.fileNum;
    if (n > 0) {
      for (let i = n - 1; i > 0; i--) {
        const from = `${this.path}.${i}`;
        if (existsSync(from)) renameSync(from, `${this.path}.${i + 1}`);
      }
      rmSync(`${this.path}.1`, { force: true });
      if (existsSync(this.path)) renameSync(this.path, `${this.path}.1`);
    }
    this.open();
  }
}
