import { Injectable, ValidationPipe, type ValidationError } from '@nestjs/common';
import { BackOfficeHttpError } from './backoffice-http-error.js';

function flatten(errors: ValidationError[], parent = ''): Array<{ field: string; code: string; description: string }> {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.entries(error.constraints ?? {}).map(([constraint, description]) => ({
      field,
      code: constraint === 'whitelistValidation' ? 'unknown_field' : constraint,
      description,
    }));
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/** Validates bodies, queries and params; unknown fields and wrong types give 400 `validation_failed`. */
@Injectable()
export class BackOfficeValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      forbidUnknownValues: true,
      stopAtFirstError: false,
      exceptionFactory: (errors) =>
        new BackOfficeHttpError(400, 'validation_failed', 'The request is not valid.', { errors: flatten(errors) }),
    });
  }
}
