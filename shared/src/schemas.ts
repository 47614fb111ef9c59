// Request and response shapes of the API (SPEC sections 6, 6a, 7, 7a), shared by server and widget.
import { z } from 'zod';
import { withinChars } from './chars.js';
import { EMAIL_PATTERN, MAX_EMAIL } from './email.js';
import { normalizeOriginEntry } from './origins.js';

export { withinChars };

export const ServiceId = z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'must match ^[a-z0-9][a-z0-9-]{1,62}$');
export const EnvironmentSchema = z.enum(['live', 'test']);
export const Scope = z.enum(['read', 'write', 'admin']);
export type Scope = z.infer<typeof Scope>;
export const TicketStatus = z.enum(['open', 'closed']);
export type TicketStatus = z.infer<typeof TicketStatus>;

/**
 * A whole number in a query string, written as plain decimal digits: `z.coerce.number()` would
 * also take `1e1`, `0x10`, ` 5`, `5.0` or an empty value (as 0) and read them as numbers.
 */
const QueryInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^(0|[1-9][0-9]{0,8})$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** A string of at most `max` characters (see withinChars). */
const Chars = (max: number) => z.string().refine((v) => withinChars(v, max), `must be at most ${max} characters`);
/** A trimmed string of at most `max` characters (see withinChars). */
const TrimmedText = (max: number) =>
  z.string().trim().refine((v) => withinChars(v, max), `must be at most ${max} characters`);

/** True when `v` shows something: a character outside White_Space, format (Cf) and control (Cc) characters. */
const visible = (v: string): boolean => /[^\p{White_Space}\p{Cf}\p{Cc}]/u.test(v);
/** A name: 1 to `max` characters after trimming, counted as a reader counts them (see withinChars), not all invisible. */
const Name = (max: number) =>
  z.string().trim().refine(visible, 'must not be empty').refine((v) => withinChars(v, max), `must be at most ${max} characters`);

/** A workspace's name (the CLI's `workspace create`): the rule of every other name. */
export const WorkspaceName = Name(100);

export const MAX_MESSAGE = 5000;
/** The longest signed user token taken, in the body (400 beyond) or in X-User-Token (401 beyond). */
export const MAX_USER_TOKEN = 8192;
/**
 * A message body: 1 to 5,000 characters after trimming; stored trimmed. A body of nothing but
 * invisible characters (zero-width spaces, direction marks, a BOM, control characters), which
 * trim() keeps, would reach the agent as an empty bubble: it counts as empty too.
 */
export const MessageBody = TrimmedText(MAX_MESSAGE).refine(visible, 'must not be empty');

const IsoTime = z.string();
const Nullable = <T extends z.ZodTypeAny>(t: T) => t.nullable();

export const HttpUrl = z
  .string()
  .max(2048)
  .refine((v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL');

/** A visitor's email: the rule of email.ts, which the widget checks before sending. */
export const Email = z.string().max(MAX_EMAIL).pipe(z.email({ pattern: EMAIL_PATTERN }));

// zod's record skips an own `__proto__` key without checking its value, so the metadata stored
// would silently lack a key the caller sent: it is refused by name instead.
export const Metadata = z
  .unknown()
  .refine((m) => !(m !== null && typeof m === 'object' && Object.hasOwn(m, '__proto__')), {
    message: 'is a reserved key name', path: ['__proto__'],
  })
  .pipe(z.record(z.string().min(1).refine((k) => withinChars(k, 40), 'must be at most 40 characters'), Chars(500)))
  .refine((m) => Object.keys(m).length <= 20, 'at most 20 keys');

/**
 * An optional field of a widget request that may also be `null`, read as left out: responses write
 * "no value" as null (SPEC 7a), so a backend that proxies visitors may echo that shape back.
 */
const Absent = <T extends z.ZodType>(schema: T) => schema.nullish().transform((v) => v ?? undefined);

export const Visitor = z.strictObject({
  name: Absent(TrimmedText(100)),
  email: Absent(Email),
});

// ---- widget requests ----

export const CreateTicketBody = z.strictObject({
  message: MessageBody,
  visitor: Absent(Visitor),
  page_url: Absent(HttpUrl),
  metadata: Absent(Metadata),
  user_token: z.string().min(1).max(MAX_USER_TOKEN).optional(),
  api_key: z.string().optional(),
});
export type CreateTicketBody = z.infer<typeof CreateTicketBody>;

export const PostMessageBody = z.strictObject({
  message: MessageBody,
  api_key: z.string().optional(),
});

export const MessagesQuery = z.strictObject({
  after: z.string().min(1).max(100).optional(),
});

export const IdempotencyKey = z.string().min(1).max(255);
export const VisitorToken = z.string().min(1).max(200);

/** `GET /v1/widget/:serviceId/tickets` (a signed-in user's tickets): a short page, newest first. */
export const UserTicketsQuery = z.strictObject({
  limit: QueryInt(1, 20).optional(),
  cursor: z.string().min(1).max(200).optional(),
});
export type UserTicketsQuery = z.infer<typeof UserTicketsQuery>;

// ---- shapes ----

export const WidgetSettings = z.object({
  greeting: z.string(),
  color: z.string(),
  position: z.enum(['bottom-right', 'bottom-left']),
  require_identity: z.boolean(),
});
export type WidgetSettings = z.infer<typeof WidgetSettings>;

export const Prices = z.object({ 'ticket.create': z.number().int(), 'message.create': z.number().int() });

export const Site = z.object({
  service_id: z.string(),
  name: z.string(),
  allowed_origins: z.array(z.string()),
  allow_server_requests: z.boolean(),
  rate_limit_per_minute: z.number().int(),
  daily_spend_cap_micros: z.number().int(),
  prices: Prices,
  widget: WidgetSettings,
  created_at: IsoTime,
});
export type Site = z.infer<typeof Site>;

export const Key = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  type: z.enum(['publishable', 'secret']),
  environment: EnvironmentSchema,
  scopes: z.array(z.string()),
  site: Nullable(z.string()),
  sites: Nullable(z.array(z.string())),
  created_at: IsoTime,
  last_used_at: Nullable(IsoTime),
  expires_at: Nullable(IsoTime),
  revoked_at: Nullable(IsoTime),
  exposed_at: Nullable(IsoTime),
  secret: z.string().optional(),
});
export type Key = z.infer<typeof Key>;

export const Ticket = z.object({
  id: z.string(),
  status: TicketStatus,
  environment: EnvironmentSchema,
  visitor: z.object({ name: Nullable(z.string()), email: Nullable(z.string()) }),
  user: Nullable(z.object({ id: z.string(), name: Nullable(z.string()), email: Nullable(z.string()) })),
  page_url: Nullable(z.string()),
  metadata: Nullable(z.record(z.string(), z.string())),
  created_at: IsoTime,
  updated_at: IsoTime,
});
export type Ticket = z.infer<typeof Ticket>;

export const Message = z.object({
  id: z.string(),
  ticket_id: z.string(),
  author: z.enum(['visitor', 'agent']),
  author_name: Nullable(z.string()),
  body: z.string(),
  created_at: IsoTime,
});
export type Message = z.infer<typeof Message>;

// ---- widget responses ----

export const WidgetConfigResponse = z.object({
  site: z.object({ service_id: z.string(), name: z.string() }),
  widget: WidgetSettings,
});
export type WidgetConfigResponse = z.infer<typeof WidgetConfigResponse>;

export const CreateTicketResponse = z.object({ ticket: Ticket, visitor_token: z.string(), messages: z.array(Message) });
export type CreateTicketResponse = z.infer<typeof CreateTicketResponse>;
export const MessagesResponse = z.object({ ticket: Ticket, messages: z.array(Message) });
export type MessagesResponse = z.infer<typeof MessagesResponse>;
export const MessageResponse = z.object({ message: Message });
export type MessageResponse = z.infer<typeof MessageResponse>;
export const UserTicketsResponse = z.object({
  tickets: z.array(z.object({ ticket: Ticket, visitor_token: z.string() })),
  next_cursor: z.string().nullable(),
});
export type UserTicketsResponse = z.infer<typeof UserTicketsResponse>;

// ---- management requests ----

/** An origin allowlist entry, normalised (lowercase, no default port, no trailing slash). */
export const OriginEntry = z.string().transform((v, ctx) => {
  const n = normalizeOriginEntry(v);
  if (!n) {
    ctx.addIssue({ code: 'custom', message: 'must be scheme://host[:port] or https://*.domain, with no path; a wildcard needs a domain of your own, not a public suffix such as *.co.uk or *.github.io' });
    return z.NEVER;
  }
  return n;
});

const Color = z.string().regex(/^#[0-9a-fA-F]{6}$/, 'must be a #rrggbb colour');
const Micros = z.number().int().min(0).max(1_000_000_000_000);

export const WidgetSettingsInput = z.strictObject({
  greeting: TrimmedText(500).optional(),
  color: Color.optional(),
  position: z.enum(['bottom-right', 'bottom-left']).optional(),
  require_identity: z.boolean().optional(),
});
export const PricesInput = z.strictObject({
  'ticket.create': Micros.optional(),
  'message.create': Micros.optional(),
});

const siteFields = {
  name: Name(100),
  allowed_origins: z.array(OriginEntry).max(100),
  allow_server_requests: z.boolean(),
  rate_limit_per_minute: z.number().int().min(1).max(100_000),
  daily_spend_cap_micros: Micros,
  prices: PricesInput,
  widget: WidgetSettingsInput,
};

export const CreateSiteBody = z.strictObject({
  service_id: ServiceId,
  name: siteFields.name,
  allowed_origins: siteFields.allowed_origins,
  allow_server_requests: siteFields.allow_server_requests.optional(),
  rate_limit_per_minute: siteFields.rate_limit_per_minute.optional(),
  daily_spend_cap_micros: siteFields.daily_spend_cap_micros.optional(),
  prices: siteFields.prices.optional(),
  widget: siteFields.widget.optional(),
});
export type CreateSiteBody = z.infer<typeof CreateSiteBody>;

export const PatchSiteBody = z.strictObject({
  name: siteFields.name.optional(),
  allowed_origins: siteFields.allowed_origins.optional(),
  allow_server_requests: siteFields.allow_server_requests.optional(),
  rate_limit_per_minute: siteFields.rate_limit_per_minute.optional(),
  daily_spend_cap_micros: siteFields.daily_spend_cap_micros.optional(),
  prices: siteFields.prices.optional(),
  widget: siteFields.widget.optional(),
});
export type PatchSiteBody = z.infer<typeof PatchSiteBody>;

export const CreateKeyBody = z.strictObject({
  type: z.enum(['publishable', 'secret']),
  name: Name(100),
  site: ServiceId.optional(),
  // `widget` is the one scope of publishable keys; secret keys take read/write/admin (checked by the server).
  scopes: z.array(z.enum([...Scope.options, 'widget'])).min(1).max(4).optional(),
  sites: z.array(ServiceId).min(1).max(100).optional(),
  expires_at: z.iso.datetime({ offset: true }).optional(),
});
export type CreateKeyBody = z.infer<typeof CreateKeyBody>;

export const RotateKeyBody = z.strictObject({
  grace_seconds: z.number().int().min(0).max(604_800).optional(),
});

/** Query of the plain management lists (`GET /v1/sites`, `GET /v1/keys`). */
export const PageQuery = z.strictObject({
  limit: QueryInt(1, 100).optional(),
  cursor: z.string().min(1).max(200).optional(),
});

export const ListTicketsQuery = z.strictObject({
  status: TicketStatus.optional(),
  limit: QueryInt(1, 100).optional(),
  cursor: z.string().min(1).max(200).optional(),
});

export const AgentReplyBody = z.strictObject({
  message: MessageBody,
  author_name: Name(100).optional(),
});

export const PatchTicketBody = z.strictObject({ status: TicketStatus });

export const UsageQuery = z.strictObject({
  days: QueryInt(1, 90).optional(),
});

export const UsageDay = z.object({
  date: z.string(),
  spend_micros: z.number().int(),
  tickets: z.number().int(),
  messages: z.number().int(),
  refused: z.record(z.string(), z.number().int()),
});
export type UsageDay = z.infer<typeof UsageDay>;

export const CreateSigningKeyBody = z.strictObject({
  public_key_pem: z.string().min(1).max(4096).optional(),
});
