import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { ErrorResponse } from '../auth/auth.dto.js';

/** The documented error responses of a route: `[status, description]` pairs. */
export const ApiErrors = (...list: Array<[number, string]>) =>
  applyDecorators(...list.map(([status, description]) => ApiResponse({ status, description, type: ErrorResponse })));
