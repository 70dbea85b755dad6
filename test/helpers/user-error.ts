import { expect } from 'vitest';
import { UserError } from '../../src/config/errors.js';

/** Runs `fn`, which must throw a UserError; returns its message. */
export function userError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}
