import type { Ref } from 'preact';

interface Props {
  open: boolean;
  unread: number;
  siteName: string;
  onToggle(): void;
  buttonRef: Ref<HTMLButtonElement>;
}

/** The round button that opens and closes the chat, with the unread count while closed. */
export function Launcher({ open, unread, siteName, onToggle, buttonRef }: Props) {
  const count = !open && unread > 0 ? unread : 0;
  // Not "Close chat", the name of the panel's own close button: two controls of one name confuse a screen reader.
  const label = open
    ? 'Hide chat'
    : `Open chat with ${siteName}${count ? `, ${count} unread ${count === 1 ? 'message' : 'messages'}` : ''}`;
  return (
    <button ref={buttonRef} type="button" class="launcher" aria-label={label} aria-expanded={open} aria-controls="parley-panel" onClick={onToggle}>
      <svg viewBox="0 0 24 24" aria-hidden="true">
        <path d={open ? 'M6 6l12 12M18 6L6 18' : 'M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z'} />
      </svg>
      {count > 0 && (
        <span class="badge" aria-hidden="true">
          {count > 99 ? '99+' : count}
        </span>
      )}
    </button>
  );
}
