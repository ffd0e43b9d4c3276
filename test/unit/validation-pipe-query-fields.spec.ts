import 'reflect-metadata';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { BackOfficeHttpError } from '../../src/backoffice-identity/http/backoffice-http-error.js';
import { BackOfficeValidationPipe } from '../../src/backoffice-identity/http/backoffice-validation.pipe.js';
import { ListPageQuery } from '../../src/backoffice-identity/http/list-page.js';

/** A host's query class that extends the module's page query with a field of its own, without its own `queryFields`. */
class TaggedPageQuery extends ListPageQuery {
  @IsOptional()
  @IsString()
  @MaxLength(3)
  tag?: string;
}

/** The same, naming its fields itself. */
class OwnFieldsPageQuery extends ListPageQuery {
  static override readonly queryFields: readonly string[] = ['skip', 'take'];
  @IsOptional()
  @IsString()
  tag?: string;
}

async function errorOf(run: Promise<unknown>): Promise<BackOfficeHttpError> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BackOfficeHttpError);
  return error as BackOfficeHttpError;
}

describe('BackOfficeValidationPipe: static queryFields counts only on the class that defines it', () => {
  const pipe = new BackOfficeValidationPipe();

  it('the class that defines queryFields ignores other query fields and validates its own', async () => {
    const query = (await pipe.transform({ take: '5', _: '1712345678' }, { type: 'query', metatype: ListPageQuery })) as ListPageQuery;
    expect(query).toMatchObject({ skip: 0, take: 5 });
    expect(query).not.toHaveProperty('_');
    const error = await errorOf(pipe.transform({ take: '1001' }, { type: 'query', metatype: ListPageQuery }));
    expect((error.getResponse() as { errors: Array<{ field: string }> }).errors.map((e) => e.field)).toEqual(['take']);
  });

  it('a subclass that adds a validated field without its own queryFields gets that field validated (and unknown fields refused)', async () => {
    const ok = (await pipe.transform({ take: '5', tag: 'abc' }, { type: 'query', metatype: TaggedPageQuery })) as TaggedPageQuery;
    expect(ok).toMatchObject({ skip: 0, take: 5, tag: 'abc' });
    const tooLong = await errorOf(pipe.transform({ take: '5', tag: 'abcdef' }, { type: 'query', metatype: TaggedPageQuery }));
    expect((tooLong.getResponse() as { errors: Array<{ field: string }> }).errors.map((e) => e.field)).toEqual(['tag']);
    const unknown = await errorOf(pipe.transform({ take: '5', other: 'x' }, { type: 'query', metatype: TaggedPageQuery }));
    expect((unknown.getResponse() as { errors: Array<{ field: string }> }).errors.map((e) => e.field)).toContain('other');
  });

  it('a subclass that defines queryFields itself gets them honoured', async () => {
    const query = (await pipe.transform({ take: '5', tag: 'ignored' }, { type: 'query', metatype: OwnFieldsPageQuery })) as OwnFieldsPageQuery;
    expect(query).toMatchObject({ skip: 0, take: 5 });
    expect(query.tag).toBeUndefined();
  });
});
