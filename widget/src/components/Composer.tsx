import { Component, type Ref } from 'preact';
import { countChars } from '@parley/shared/chars';
import { MAX_MESSAGE, tooLong } from '../store.ts';

interface Props {
  /** Returns false when the text was not taken (it then stays in the box). */
  onSend(text: string): boolean;
  textRef?: Ref<HTMLTextAreaElement>;
  /** Where the text is kept, also while the panel is closed (reset() empties it). */
  draft: { text: string };
}

const fmt = (n: number) => n.toLocaleString('en-US');

/**
 * The message box: Enter sends, Shift+Enter adds a line, a counter appears near the limit. The
 * counter changes on every key, so screen readers are told apart, and only when the text crosses
 * 500 or 100 characters left or the limit: the words of the live region change only then.
 */
export class Composer extends Component<Props> {
  private keep = (text: string) => {
    this.props.draft.text = text;
    this.forceUpdate();
  };

  private submit = (e?: Event) => {
    e?.preventDefault();
    const { text } = this.props.draft;
    if (text.trim() && !tooLong(text.trim()) && this.props.onSend(text)) this.keep('');
  };

  render({ textRef, draft: { text } }: Props) {
    const length = countChars(text.trim());
    const left = MAX_MESSAGE - length;
    // Over 5,000 characters, or (emoji, mostly) over the bytes a request may carry.
    const over = tooLong(text.trim());
    return (
      <form class="compose" onSubmit={this.submit}>
        <textarea
          ref={textRef}
          rows={1}
          dir="auto"
          aria-label="Message"
          placeholder="Write a message…"
          value={text}
          onInput={(e) => this.keep(e.currentTarget.value)}
          onKeyDown={(e) => {
            // Safari ends the composition before the Enter that confirms it: keyCode 229 still marks that Enter as the IME's.
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) this.submit(e);
          }}
        />
        {(left <= 500 || over) && (
          <span class={over ? 'count over' : 'count'}>
            {fmt(length)} / {fmt(MAX_MESSAGE)}
          </span>
        )}
        <span class="sr" role="status">
          {over ? (left < 0 ? `Over the limit of ${fmt(MAX_MESSAGE)} characters.` : 'Too long to send.') : left <= 500 ? `At most ${left > 100 ? 500 : 100} characters left.` : ''}
        </span>
        <button type="submit" class="send" disabled={!length || over}>
          Send
        </button>
      </form>
    );
  }
}
