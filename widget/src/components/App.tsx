import { Component, createRef } from 'preact';
import type { Store } from '../store.ts';
import { Launcher } from './Launcher.tsx';
import { Panel } from './Panel.tsx';

interface Props {
  store: Store;
  shadow: ShadowRoot;
}

/**
 * The whole widget inside the shadow root: nothing until /config answered, then launcher and panel.
 * Class components rather than hooks: preact/hooks would cost a tenth of the 15 KB budget.
 */
export class App extends Component<Props> {
  private launcher = createRef<HTMLButtonElement>();
  private off?: () => void;
  private refocus = false;

  override componentDidMount(): void {
    const { store, shadow } = this.props;
    let open = store.get().open;
    this.off = store.subscribe(() => {
      const now = store.get().open;
      // Decided before the panel leaves the DOM: focus returns to the launcher only if it was in
      // the widget, so a page calling Parley.close() keeps its own focus.
      if (open && !now) this.refocus = shadow.activeElement !== null;
      open = now;
      this.forceUpdate();
    });
    this.forceUpdate();
  }

  override componentDidUpdate(): void {
    if (this.refocus && !this.props.store.get().open) {
      this.refocus = false;
      this.launcher.current?.focus();
    }
  }

  override componentWillUnmount(): void {
    this.off?.();
  }

  render({ store, shadow }: Props) {
    const state = store.get();
    if (state.phase !== 'ready') return null;
    return (
      <div
        lang="en"
        class={`root ${state.position === 'bottom-left' ? 'left' : 'right'}${state.open ? ' open' : ''}`}
        onKeyDown={(e) => {
          if (!state.open) return;
          // Escape closes from anywhere in the widget, the launcher included.
          if (e.key === 'Escape') store.setOpen(false);
          // On a phone the panel hides the launcher and the page: Tab goes round inside it, not to what it covers.
          else if (e.key === 'Tab' && !this.launcher.current?.offsetWidth) {
            const all = shadow.querySelectorAll<HTMLElement>('.panel :is(button,input,textarea,a):not(:disabled)');
            const edge = all[e.shiftKey ? 0 : all.length - 1];
            if (shadow.activeElement === edge) {
              e.preventDefault();
              all[e.shiftKey ? all.length - 1 : 0]?.focus();
            }
          }
        }}
      >
        <Launcher
          open={state.open}
          unread={state.unread}
          siteName={state.siteName}
          buttonRef={this.launcher}
          onToggle={() => store.setOpen(!state.open)}
        />
        {state.open && <Panel state={state} store={store} />}
        {/* One element per reply, added and never rewritten, so several that arrive together are each read out. */}
        <div class="sr" aria-live="polite">
          {state.announcements.map(([id, text]) => (
            <p key={id}>{text}</p>
          ))}
        </div>
      </div>
    );
  }
}
