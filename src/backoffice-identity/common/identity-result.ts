/** One error of an {@link IdentityResult}: a stable machine-readable code and a human description. */
export interface IdentityError {
  code: string;
  description: string;
}

/** Outcome of an operation that can fail on user input, as in ASP.NET Core Identity. */
export class IdentityResult<T = void> {
  private constructor(
    readonly succeeded: boolean,
    readonly errors: readonly IdentityError[],
    readonly value?: T,
  ) {}

  static success(): IdentityResult<void>;
  static success<T>(value: T): IdentityResult<T>;
  static success<T>(value?: T): IdentityResult<T> {
    return new IdentityResult<T>(true, [], value);
  }

  static failed<T = void>(...errors: IdentityError[]): IdentityResult<T> {
    return new IdentityResult<T>(false, errors);
  }

  toString(): string {
    return this.succeeded ? 'Succeeded' : `Failed : ${this.errors.map((e) => e.code).join(',')}`;
  }
}
