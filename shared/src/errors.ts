// The one error vocabulary of the API: codes, their HTTP status and the envelope.
import { z } from 'zod';

export const ErrorCode = z.enum([
  'invalid_json',
  'invalid_request',
  'conflicting_credentials',
  'missing_authorization',
  'invalid_api_key',
  'invalid_user_token',
  'spend_cap_exceeded',
  'insufficient_scope',
  'publishable_key_required',
  'origin_not_allowed',
  'origin_required',
  'site_mismatch',
  'identity_required',
  'not_found',
  'idempotency_conflict',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limit_exceeded',
  'internal_error',
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** HTTP status of each code. No default branch: a new code without a status fails to compile. */
export function codeToStatus(code: ErrorCode): number {
  switch (code) {
    case 'invalid_json':
    case 'invalid_request':
    case 'conflicting_credentials':
      return 400;
    case 'missing_authorization':
    case 'invalid_api_key':
    case 'invalid_user_token':
      return 401;
    case 'spend_cap_exceeded':
      return 402;
    case 'insufficient_scope':
    case 'publishable_key_required':
    case 'origin_not_allowed':
    case 'origin_required':
    case 'site_mismatch':
    case 'identity_required':
      return 403;
    case 'not_found':
      return 404;
    case 'idempotency_conflict':
      return 409;
    case 'payload_too_large':
      return 413;
    case 'unsupported_media_type':
      return 415;
    case 'rate_limit_exceeded':
      return 429;
    case 'internal_error':
      return 500;
  }
}

export const ErrorIssue = z.object({ path: z.string(), message: z.string() });
export type ErrorIssue = z.infer<typeof ErrorIssue>;

export const ErrorEnvelope = z.object({
  error: z.object({
    code: ErrorCode,
    message: z.string(),
    request_id: z.string(),
    issues: z.array(ErrorIssue).optional(),
    resets_at: z.string().optional(),
  }),
});
export type ErrorEnvelope = z.infer<typeof ErrorEnvelope>;
