import { EMAIL_PATTERN, MAX_EMAIL } from '@parley/shared/email';
import { Component, createRef } from 'preact';
import { countChars } from '@parley/shared/chars';
import { MAX_NAME, type State, type Store } from '../store.ts';
import { Composer } from './Composer.tsx';
import { MessageList } from './MessageList.tsx';
import { EMAIL_ERROR, NAME_ERROR, VisitorFields } from './VisitorFields.tsx';

interface Props {
  state: State;
  store: Store;
}

/** The open chat: header, conversation, refusal notice, optional visitor fields and composer. The typed text, name and email live in the store's draft. */
export class Panel extends Component<Props, { error: string }> {
  override state = { error: '' };
  private text = createRef<HTMLTextAreaElement>();

  /**
   * Focus goes to the message box (on a touch screen to the close button, or the keyboard would pop
   * up at once), unless the visitor is typing in a field of the page: a panel the page opened
   * (data-open, Parley.open()) after a slow start must not take their keystrokes.
   */
  override componentDidMount(): void {
    if (!document.activeElement?.matches('input,textarea,select,[contenteditable]'))
      (this.base as Element).querySelector<HTMLElement>(matchMedia('(pointer:coarse)').matches ? '.x' : 'textarea')!.focus();
  }

  /** The Retry button disappears once pressed: focus goes to the message box, not to the page's <body>. */
  private retry = (key: string) => {
    this.props.store.retry(key);
    this.text.current?.focus();
  };

  private send = (message: string): boolean => {
    const { store } = this.props;
    const first = asks(this.props);
    const email = store.draft.who.email.trim();
    const name = store.draft.who.name.trim();
    // The server's own rules. No maxLength on the fields: it counts UTF-16 units, not characters,
    // and would cut a long address into another.
    const error = !first ? '' : countChars(name) > MAX_NAME ? NAME_ERROR : email && (email.length > MAX_EMAIL || !EMAIL_PATTERN.test(email)) ? EMAIL_ERROR : '';
    this.setState({ error });
    if (error) return false;
    return store.send(message, first ? { name: name || undefined, email: email || undefined } : undefined);
  };

  render({ state, store }: Props) {
    const close = () => store.setOpen(false);
    return (
      <div id="parley-panel" class="panel" role="dialog" aria-label={`Chat with ${state.siteName}`}>
        <div class="head">
          <h2>{state.siteName}</h2>
          <button type="button" class="x" aria-label="Close chat" onClick={close}>
            ×
          </button>
        </div>
        <MessageList greeting={state.greeting} siteName={state.siteName} items={state.items} onRetry={this.retry} />
        {state.closed && <p class="note">This conversation was closed. Send a message to reopen it.</p>}
        {state.notice && (
          <p class="note" role={state.ticking ? undefined : 'alert'}>
            {state.notice}
          </p>
        )}
        {asks(this.props) && (
          <VisitorFields value={store.draft.who} onChange={(who) => {
              store.draft.who = who;
              this.setState({ error: '' });
            }} error={this.state.error} />
        )}
        <Composer onSend={this.send} textRef={this.text} draft={store.draft} />
      </div>
    );
  }
}

/** Name and email are offered only before the first message, and not to a signed-in user (the server takes them from the token). */
const asks = ({ state, store }: Props) => !state.hasTicket && !state.items.length && !store.userToken;
