import { Component, createRef, Fragment } from 'preact';
import type { Item } from '../store.ts';
import { MessageText } from './MessageText.tsx';

interface Props {
  greeting: string;
  siteName: string;
  items: Item[];
  onRetry(key: string): void;
}

/**
 * The conversation, oldest first; an agent's name labels their reply. A new message scrolls it to
 * the newest only when the visitor was at (or near) the bottom or just sent one: a visitor who
 * scrolled up to read keeps their place.
 */
export class MessageList extends Component<Props> {
  private list = createRef<HTMLOListElement>();

  override componentDidMount(): void {
    this.componentDidUpdate({ items: [] } as unknown as Props, null, true);
  }

  override getSnapshotBeforeUpdate(): boolean {
    const el = this.list.current;
    return !el || el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  }

  override componentDidUpdate(prev: Props, _: unknown, atEnd: boolean): void {
    const el = this.list.current;
    const { items } = this.props;
    if (el && prev.items.length !== items.length && (atEnd || items[items.length - 1]?.state === 'sending')) el.scrollTop = el.scrollHeight;
  }

  render({ greeting, siteName, items, onRetry }: Props) {
    return (
      <ol class="msgs" ref={this.list} aria-label="Conversation">
        {greeting && (
          <li class="m agent">
            <MessageText text={greeting} />
          </li>
        )}
        {items.map(
          (i) =>
            i.state !== 'covered' && (
              <Fragment key={i.key}>
                {/* Seen, not read out: the hidden "Dana: " of the message says it once, before the text. */}
                {i.author === 'agent' && i.authorName && (
                  <li class="n" aria-hidden="true">
                    {i.authorName}
                  </li>
                )}
                <li class={`m ${i.author}${i.state ? ` ${i.state}` : ''}`}>
                  <span class="sr">{i.author === 'agent' ? `${i.authorName || siteName}: ` : 'You: '}</span>
                  <MessageText text={i.body} />
                  {i.state === 'sending' && <span class="st">Sending…</span>}
                  {i.state === 'waiting' && <span class="st">Waiting for sign-in…</span>}
                  {i.state === 'failed' && (
                    <span class="st">
                      Not sent
                      <button type="button" onClick={() => onRetry(i.key)}>
                        Retry
                      </button>
                    </span>
                  )}
                </li>
              </Fragment>
            ),
        )}
      </ol>
    );
  }
}
