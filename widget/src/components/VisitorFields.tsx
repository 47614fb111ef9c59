export const NAME_ERROR = 'Please keep your name to 100 characters.';
export const EMAIL_ERROR = 'Please enter a valid email address, or leave it empty.';

export interface VisitorInfo {
  name: string;
  email: string;
}

interface Props {
  value: VisitorInfo;
  onChange(v: VisitorInfo): void;
  error: string;
}

/** Optional name and email, offered only before the first message. */
export function VisitorFields({ value, onChange, error }: Props) {
  return (
    <>
      <div class="who">
        <input
          aria-label="Your name (optional)"
          placeholder="Name (optional)"
          autoComplete="name"
          value={value.name}
          aria-invalid={error === NAME_ERROR || undefined}
          onInput={(e) => onChange({ ...value, name: e.currentTarget.value })}
        />
        <input
          type="email"
          aria-label="Your email (optional)"
          placeholder="Email (optional)"
          autoComplete="email"
          value={value.email}
          aria-invalid={error === EMAIL_ERROR || undefined}
          onInput={(e) => onChange({ ...value, email: e.currentTarget.value })}
        />
      </div>
      {error && (
        <p class="err" role="alert">
          {error}
        </p>
      )}
    </>
  );
}
