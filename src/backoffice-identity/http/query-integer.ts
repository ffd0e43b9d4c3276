import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { IsInt } from 'class-validator';

/**
 * A whole number as a query string writes it: ASCII digits only. No sign (`+1`, `-0`), no space or other white space
 * around it (`%C2%A01`, `1%20`, a tab), no other notation (`1e3`, `0x1`, `1_0`, `1.0`) and no non-ASCII digit
 * (`١`, `１`): `Number()` reads several of those as a number, so a client's typo or a smuggled variant would pass.
 */
const ASCII_DIGITS = /^[0-9]+$/;

/**
 * The number a query value of ASCII digits stands for; any other value is left as it came (a string, an array for a
 * repeated field), so `IsInt` refuses it as not a number rather than a bound refusing what `Number()` made of it.
 */
export function parseQueryInteger(value: unknown): unknown {
  return typeof value === 'string' && ASCII_DIGITS.test(value) ? Number(value) : value;
}

/**
 * A numeric query field (`skip`, `take`): parsed by {@link parseQueryInteger}, then `IsInt` (400 `validation_failed`,
 * code `isInt`, naming the field, for anything but ASCII digits). Shared by every route's query class, so the lists
 * (`GET /users`, `/auth/sessions`, `/users/api`, `/groups`) and `GET /audit` accept and refuse the same values. Put
 * its bounds (`Min`, `Max`) beside it. Also for a body field a form may send (rotate-secret's `overlapMinutes`): a
 * JSON number is checked as it is, a string only when it is ASCII digits (what a form body carries).
 */
export function QueryInteger(): PropertyDecorator {
  return applyDecorators(
    Transform(({ value }) => parseQueryInteger(value)),
    IsInt({ message: ({ property }) => `${property} must be a whole number written in ASCII digits (0-9), without sign, spaces or other characters.` }),
  );
}
