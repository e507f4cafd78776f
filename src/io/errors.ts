/** An error caused by a user's input (file, config, argument): printed without a stack trace. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

/** A weight file that cannot be read as it claims to be. */
export class WeightFileError extends InputError {
  constructor(readonly file: string, message: string, readonly tensor?: string) {
    super(`${file}${tensor !== undefined ? `: tensor "${tensor}"` : ''}: ${message}`);
  }
}
