import { Component, createRef, Fragment } from 'preact';
import type { Item } from '../store.ts';
import { MessageText } from './MessageText.tsx';

interface Props {
  greeting: string;
  siteName: string;
  items: Item[];
  onRetry(key: string): void;
}

/** The conversation, oldest first, scrolled to the newest message whenever one is added; an agent's name labels their reply. */
export class MessageList extends Component<Props> {
  private list = createRef<HTMLOListElement>();

  override componentDidMount(): void {
    this.componentDidUpdate({ items: [] } as unknown as Props);
  }

  override componentDidUpdate(prev: Props): void {
    const el = this.list.current;
    if (el && prev.items.length !== this.props.items.length) el.scrollTop = el.scrollHeight;
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
