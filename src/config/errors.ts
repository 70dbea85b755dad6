/** A mistake the user can fix (bad file, bad flag, unknown member): printed as one line, no stack trace. */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Ctrl-C at a question: click prints a bare `Aborted!` (no `Error:` prefix) and exits 1. */
export class AbortedError extends UserError {
  constructor() {
    super('Aborted!');
  }
}
