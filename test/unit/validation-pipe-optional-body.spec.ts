import 'reflect-metadata';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { BackOfficeHttpError } from '../../src/backoffice-identity/http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../../src/backoffice-identity/http/backoffice-validation.pipe.js';
import { DisableUserDto } from '../../src/backoffice-identity/users/account.dto.js';
import { RecoveryCodesRegenerateDto } from '../../src/backoffice-identity/two-factor/two-factor.dto.js';

/** A host's body that extends the module's optional-body DTO with a required field, without its own `optionalBody`. */
class TicketedDisableDto extends DisableUserDto {
  @IsString()
  @MaxLength(20)
  ticket!: string;
}

/** One that adds only an optional field, without its own `optionalBody`: the inherited rule let its body be left out silently. */
class AnnotatedDisableDto extends DisableUserDto {
  @IsOptional()
  @IsString()
  note?: string;
}

/** A host's body that extends it and says itself that the body may be left out. */
class NotedDisableDto extends DisableUserDto {
  static override readonly optionalBody = true;
  @IsOptional()
  @IsString()
  note?: string;
}

async function errorOf(run: Promise<unknown>): Promise<BackOfficeHttpError> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BackOfficeHttpError);
  return error as BackOfficeHttpError;
}

describe('BackOfficeValidationPipe: static optionalBody counts only on the class that defines it', () => {
  const pipe = new BackOfficeValidationPipe();

  it('the class that defines optionalBody takes a left-out body as {}', async () => {
    const body = await pipe.transform(undefined, { type: 'body', metatype: DisableUserDto });
    expect(body).toBeInstanceOf(DisableUserDto);
    expect({ ...(body as object) }).toEqual({});
  });

  it('a subclass without its own optionalBody needs a body: a left-out one is 400 malformed_json, not the parent\'s {}', async () => {
    const annotated = await errorOf(pipe.transform(undefined, { type: 'body', metatype: AnnotatedDisableDto }));
    expect((annotated.getResponse() as { code: string }).code).toBe('malformed_json');
    const error = await errorOf(pipe.transform(undefined, { type: 'body', metatype: TicketedDisableDto }));
    expect(error.getStatus()).toBe(400);
    expect((error.getResponse() as { code: string }).code).toBe('malformed_json');
    // with a body it is validated as before, its own and inherited fields alike
    const body = await pipe.transform({ ticket: 'OPS-1', reason: 'left' }, { type: 'body', metatype: TicketedDisableDto });
    expect(body).toMatchObject({ ticket: 'OPS-1', reason: 'left' });
    const missing = await errorOf(pipe.transform({ reason: 'left' }, { type: 'body', metatype: TicketedDisableDto }));
    expect(new Set((missing.getResponse() as { errors: Array<{ field: string }> }).errors.map((e) => e.field))).toEqual(new Set(['ticket']));
  });

  it('a subclass that defines optionalBody itself takes a left-out body as {}', async () => {
    const body = await pipe.transform(undefined, { type: 'body', metatype: NotedDisableDto });
    expect(body).toBeInstanceOf(NotedDisableDto);
  });
});

/** A host's body that extends the module's no-field DTO with a field of its own, without its own `emptyBody`. */
class ReasonedRegenerateDto extends RecoveryCodesRegenerateDto {
  @IsOptional()
  @IsString()
  @MaxLength(200)
  reason?: string;
}

describe('BackOfficeValidationPipe: static emptyBody counts only on the class that defines it', () => {
  const pipe = new BackOfficeValidationPipe();

  it('the class that defines emptyBody refuses any field as unknown_field', async () => {
    const error = await errorOf(pipe.transform({ reason: 'lost phone' }, { type: 'body', metatype: RecoveryCodesRegenerateDto }));
    expect((error.getResponse() as { errors: Array<{ field: string; code: string }> }).errors).toEqual([
      expect.objectContaining({ field: 'reason', code: 'unknown_field' }),
    ]);
  });

  it('a subclass without its own emptyBody validates its own fields instead of refusing them all', async () => {
    const body = await pipe.transform({ reason: 'lost phone' }, { type: 'body', metatype: ReasonedRegenerateDto });
    expect(body).toMatchObject({ reason: 'lost phone' });
    const error = await errorOf(pipe.transform({ reason: 7 }, { type: 'body', metatype: ReasonedRegenerateDto }));
    expect(new Set((error.getResponse() as { errors: Array<{ field: string }> }).errors.map((e) => e.field))).toEqual(new Set(['reason']));
    const unknown = await errorOf(pipe.transform({ other: 'x' }, { type: 'body', metatype: ReasonedRegenerateDto }));
    expect((unknown.getResponse() as { code: string }).code).toBe('validation_failed');
  });
});
