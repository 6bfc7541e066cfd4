/**
 * Renders the masking rule and the doctor compare, as lengths and prefixes: from the template's
 * skeletons where the shape has one (no text built unless a comparison needs it), else rendered.
 */
import { layoutLength, layoutText, surelyPrefix, type Layout } from './skeleton';
import { RESERVED, type ChatMessage, type ChatTemplate, type SpecialTokens } from './template';

/** A render: its length at once, its text on demand. */
export interface LazyText {
  readonly length: number;
  text(): string;
  readonly layout?: Layout;
}

/** True when no content holds a reserved character (the condition for using layouts). */
export function cleanContents(messages: readonly ChatMessage[]): boolean {
  return messages.every((m) => !RESERVED.test(m.content));
}

class FromLayout implements LazyText {
  private built: string | undefined;
  readonly length: number;
  constructor(readonly layout: Layout, known?: string) {
    this.built = known;
    this.length = known?.length ?? layoutLength(layout);
  }
  text(): string {
    this.built ??= layoutText(this.layout);
    return this.built;
  }
}

class Plain implements LazyText {
  readonly length: number;
  constructor(private readonly value: string) {
    this.length = value.length;
  }
  text(): string {
    return this.value;
  }
}

/** `template`'s render of `messages`; throws as `render` does. `clean`: see `cleanContents`. */
export function lazyRender(template: ChatTemplate, messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens, clean: boolean): LazyText {
  const layout = clean ? template.layout(messages, addGenerationPrompt, tokens) : undefined;
  return layout ? new FromLayout(layout) : new Plain(template.render(messages, addGenerationPrompt, tokens));
}

/** An already rendered `text` of `messages` (its layout attached when `clean` and the shape has one). */
export function knownRender(template: ChatTemplate, messages: readonly ChatMessage[], addGenerationPrompt: boolean, tokens: SpecialTokens, clean: boolean, text: string): LazyText {
  const layout = clean ? template.layout(messages, addGenerationPrompt, tokens) : undefined;
  return layout ? new FromLayout(layout, text) : new Plain(text);
}

/** `whole.text().startsWith(head.text())`, proven from the skeletons when it can be. */
export function startsWith(whole: LazyText, head: LazyText): boolean {
  if (whole.layout && head.layout && surelyPrefix(head.layout, whole.layout)) return true;
  return whole.text().startsWith(head.text());
}
